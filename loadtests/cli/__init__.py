"""The `poolcheck` command line: one module per command (or pair of commands), the group, and main().

Bad input is one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import rich_click as click

from loadtests.cli import budget, reports, scenario  # noqa: F401 - importing a command module registers it
from loadtests.cli.group import cli
from loadtests.cli.run import run
from loadtests.cli.shared import make_config
from loadtests.cli.sweep import SWEPT, sweep
from loadtests.errors import EXIT_INTERRUPTED, EXIT_REFUSED
from loadtests.options import config_file, groups
from loadtests.redact import redact_dsn

__all__ = ["cli", "main", "make_config", "run"]

for _command in cli.commands.values():
    groups.place(_command.params)
# A sweep's --workers, --max-size and --pool-kind are its axes: lists of values to try.
groups.place(sweep.params, own={name: groups.CELLS for name in SWEPT if name != "duration"})


def main(argv: list[str] | None = None) -> None:
    """Entry point: bad input is one line on stderr and exit code 2, never a traceback."""
    try:
        cli.main(args=argv, prog_name="poolcheck", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.BadParameter as exc:
        click.echo(f"poolcheck: error: {redact_dsn(config_file.explain(exc))}", err=True)
        sys.exit(EXIT_REFUSED)
    except click.UsageError as exc:
        click.echo(f"poolcheck: error: {redact_dsn(exc.format_message())}", err=True)
        sys.exit(EXIT_REFUSED)
    except click.ClickException as exc:
        click.echo(f"poolcheck: error: {redact_dsn(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(EXIT_INTERRUPTED)
