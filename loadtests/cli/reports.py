"""`poolcheck report` and `poolcheck compare`: pages from run folders alone."""

from __future__ import annotations

from pathlib import Path

import rich_click as click

from loadtests.cli.group import cli
from loadtests.cli.shared import common, run_folders
from loadtests.errors import BadInput
from loadtests.options.json_output import emit, human_lines_to_stderr


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@common()
def report(run_dir: Path) -> None:
    """Write RUN_DIR/report.html again from the run folder's data alone."""
    from loadtests.present.report import write_run_report

    (folder,) = run_folders((run_dir,))
    click.echo(str(write_run_report(folder)))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="where the HTML page goes [compare-<runs>.html beside the first run]")
@click.option("--plotlyjs", type=click.Choice(["inline", "directory"]), default="directory", show_default=True,
              help="inline plotly.js in the page, or load the plotly.min.js beside it (written if missing)")
@common(json="print the comparison as JSON on stdout (loadtests/options/schemas/compare.schema.json); the table goes to stderr")
def compare(run_dirs: tuple[Path, ...], out: Path | None, plotlyjs: str, json: bool) -> None:
    """Compare runs side by side: a terminal table and an HTML page; deltas against the first run."""
    from loadtests.present.compare import compare as compare_runs, comparison

    if len(run_dirs) < 2:
        raise BadInput("compare: give two run folders or more")
    folders = run_folders(run_dirs)
    with human_lines_to_stderr(json) as stdout:
        page = compare_runs(folders, out=out, plotlyjs=plotlyjs)
        click.echo(str(page))
    if json:
        emit(comparison(folders, page=page), stdout)
