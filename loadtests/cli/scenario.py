"""`poolcheck scenario` and `poolcheck init`: the field failures reproduced, and a starter config file."""

from __future__ import annotations

import sys
from pathlib import Path

import rich_click as click

from loadtests.cli.group import cli
from loadtests.cli.shared import common, default_of
from loadtests.errors import BadInput, Refused
from loadtests.options import config_file


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME... | all")
@click.option("--results-dir", type=click.Path(path_type=Path, file_okay=False), default=default_of("results_dir"),
              show_default=True, help="where the scenario folders go")
@common()
def scenario(names: tuple[str, ...], results_dir: Path) -> None:
    """Reproduce known pool failures: a faulty run, then a fixed run, and whether the harness detects it.

    NAME: lifetime-expiry, idle-drain, worker-churn, loop-mismatch, server-idle-kill, blocking-loop,
    overcommit, sqlalchemy-overflow-churn, pgbouncer-fixes-overcommit, prepared-statements-behind-pgbouncer,
    or all (ends with a table). Each writes results/scenario-NAME-<time>/ with both runs,
    scenario.json and scenario.txt. Exit codes: 0 every failure detected and its fix clean, 1 not,
    2 bad input, 130 interrupted.
    """
    from loadtests.scenarios.runner import choose, plan_runs, run_scenarios

    try:
        planned = plan_runs(choose(list(names)), results_dir=results_dir)
    except (Refused, ValueError) as exc:
        raise BadInput(str(exc)) from None
    sys.exit(run_scenarios(planned, echo=click.echo))


@cli.command()
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), default=config_file.STARTER)
@click.option("--force", is_flag=True, help="overwrite the file if it exists")
@common()
def init(path: Path, force: bool) -> None:
    """Write a commented starter config file (poolcheck.toml): a table per command, every option and its default."""
    from loadtests.options.starter import starter_text

    if path.exists() and not force:
        raise BadInput(f"{path}: exists already; pass --force to overwrite it")
    try:
        path.write_text(starter_text(cli))
    except OSError as exc:
        raise BadInput(f"{path}: cannot write it ({exc.strerror})") from None
    click.echo(f"wrote {path}; every command reads it from this folder, or give --config {path}")
