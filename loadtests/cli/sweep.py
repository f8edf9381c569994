"""`poolcheck sweep`: a real run per cell of a grid, and the recommendation."""

from __future__ import annotations

import sys
from typing import Any

import rich_click as click

from loadtests.cli.group import cli
from loadtests.cli.run import run
from loadtests.cli.shared import SWEEP_DEFAULTS, common, make_config, read_json
from loadtests.errors import BadInput, Refused
from loadtests.options.durations import SECONDS
from loadtests.options.json_output import emit, human_lines_to_stderr
from loadtests.sweep.recommend import Criteria

# Run's options a sweep takes for every cell: all but its axes and what it refuses (a sweep
# starts a fresh embedded server and the sample app for every cell).
SWEPT = ("workers", "max_size", "pool_kind", "duration", "headroom", "pgbouncer_pool_size")
_REFUSED_BY_SWEEP = ("dsn", "server_log", "log_line_prefix", "target_url", "pools_per_worker", "pool_sizes",
                     "watch_filter",
                     "allow_faults", "web_ui", "web_port")


@cli.command()
@click.option("--workers", default="1,2,4", show_default=True, help="worker counts per host to try")
@click.option("--max-size", default="2,4,8", show_default=True, help="pool max_size values to try")
@click.option("--pool-kind", default="async", show_default=True, help="pool kinds to try: async, sync, asyncpg, sqlalchemy, e.g. async,sync")
@click.option("--pgbouncer-pool-size", metavar="N,N,...",
              help="with --pgbouncer: PgBouncer default_pool_size values to try, e.g. 2,4,8  [default: 20, PgBouncer's]")
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True,
              help="runs per cell; the table shows the median and the spread")
@click.option("--headroom", type=click.FloatRange(0, 100, max_open=True), default=SWEEP_DEFAULTS.headroom_ratio * 100,
              show_default=True, help="percent of the usable connections a recommended cell leaves free")
@click.option("--slo-p95-ms", type=click.FloatRange(min=0, min_open=True), help="p95 a recommended cell must meet [none]")
@click.option("--duration", type=SECONDS, default=20.0, show_default=True,
              help="length of the load per cell; each cell must hold a full burst")
@click.option("--search", is_flag=True, help="run only the cells that decide the recommendation, not the whole grid")
@common(config=True, json="print sweep_summary.json on stdout (loadtests/options/schemas/sweep.schema.json); every other line goes to stderr")
def sweep(
    workers: str, max_size: str, pool_kind: str, pgbouncer_pool_size: str | None, repeat: int, headroom: float,
    slo_p95_ms: float | None, search: bool, json: bool, **options: Any,
) -> None:
    """Run every pool kind x workers x max_size cell (a full run each, fresh server) and recommend one.

    Takes poolcheck run's other options for every cell. Exit codes: 0 a cell is recommended,
    1 none qualifies, 2 refused or bad input, 130 interrupted.
    """
    from loadtests.sweep.runner import Sweep, parse_list, plan_cells
    from loadtests.sweep.table import SWEEP_SUMMARY

    try:
        axes = {
            "pool_kinds": parse_list(pool_kind, option="--pool-kind", convert=str),
            "workers": parse_list(workers, option="--workers"),
            "max_sizes": parse_list(max_size, option="--max-size"),
            "pgbouncer_pool_sizes": None if pgbouncer_pool_size is None
            else parse_list(pgbouncer_pool_size, option="--pgbouncer-pool-size"),
        }
        base = make_config(**{**options, "plotlyjs": options.get("plotlyjs") or "directory"}, headroom=headroom)  # one plotly.js per sweep
        criteria = Criteria(headroom_ratio=headroom / 100, slo_p95_ms=slo_p95_ms, max_failure_ratio=base.max_failure_ratio)
        job = Sweep(plan_cells(base, **axes), repeat=repeat, criteria=criteria, echo=click.echo, search=search)
    except Refused as exc:
        raise BadInput(str(exc)) from None
    with human_lines_to_stderr(json) as stdout:
        code = job.run()
    if json and job.sweep_dir is not None and (job.sweep_dir / SWEEP_SUMMARY).is_file():
        emit(read_json(job.sweep_dir / SWEEP_SUMMARY), stdout)
    sys.exit(code)


sweep.params.extend(
    param for param in run.params if param.name not in SWEPT + _REFUSED_BY_SWEEP + ("verbose", "config_file", "json")
)
