"""`poolcheck run` and `poolcheck summarize`: one load test, and its summary computed again."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import rich_click as click

from app.settings import APP_PATTERNS

from loadtests.cli.group import cli
from loadtests.cli.shared import common, make_config, pool_sizes_option, read_json, server_setting, setting
from loadtests.config import SQLALCHEMY, SQLALCHEMY_DEFAULTS
from loadtests.errors import BadInput, Refused
from loadtests.options.durations import MILLISECONDS, SECONDS
from loadtests.options.json_output import emit, human_lines_to_stderr


@cli.command()
@setting("--workers", type=int, help="gunicorn workers per host, each with its own pool")
@setting("--hosts", type=int, help="app instances, each a gunicorn with --workers workers")
@setting("--min-size", type=int, help="pool min_size per worker")
@setting("--max-size", type=int, help="pool max_size per worker")
@setting("--pool-kind", type=click.Choice(["async", "sync", "asyncpg", SQLALCHEMY]),
          help="psycopg AsyncConnectionPool, ConnectionPool, an asyncpg pool, or a SQLAlchemy engine")
@setting("--pool-size", type=int,
          help=f"SQLAlchemy pool_size per worker, instead of --max-size  [default: {SQLALCHEMY_DEFAULTS['pool_size']}, SQLAlchemy's]")
@setting("--max-overflow", type=int,
          help=f"SQLAlchemy max_overflow per worker: connections beyond --pool-size  [default: {SQLALCHEMY_DEFAULTS['max_overflow']}, SQLAlchemy's]")
@setting("--pool-timeout", type=SECONDS, help="seconds a request waits for a connection")
@setting("--max-idle", type=SECONDS, help="pool max_idle seconds")
@setting("--max-lifetime", type=SECONDS, help="pool max_lifetime seconds")
@setting("--max-waiting", type=int, help="pool max_waiting; 0 is unbounded")
@setting("--pool-check/--no-pool-check", help="check connections before use")
@setting("--prepared-statements/--no-prepared-statements",
          help="server-side prepared statements: asyncpg's statement cache, psycopg's prepare_threshold")
@setting("--pgbouncer", type=click.Choice(["transaction", "session"]),
          help="start a real PgBouncer in this pool mode between the app and the embedded server")
@setting("--pgbouncer-pool-size", type=int, help="PgBouncer's default_pool_size: server connections per database/user  [default: 20, PgBouncer's]")
@setting("--pgbouncer-reserve-pool-size", type=int, help="PgBouncer's reserve_pool_size  [default: 0, PgBouncer's]")
@setting("--pgbouncer-max-client-conn", type=int, help="PgBouncer's max_client_conn  [default: 100, PgBouncer's]")
@setting("--max-connections", type=int, help="embedded server's max_connections")
@setting("--superuser-reserved-connections", type=int, help="embedded server's superuser_reserved_connections")
@setting("--reserved-connections", type=int, help="embedded server's reserved_connections")
@setting("--server-setting", "server_settings", multiple=True, callback=server_setting, metavar="NAME=VALUE",
          help="any other embedded server setting, e.g. idle_session_timeout=5s (repeatable)")
@setting("--dsn", envvar="POOLCHECK_DSN", show_envvar=True,
          help="use this existing server instead of the embedded one (read-only)")
@setting("--other-clients", type=int, help="connections other clients hold, counted in the budget")
@setting("--duration", type=SECONDS, help="seconds of load")
@setting("--baseline-users", type=int, help="users in quiet phases")
@setting("--burst-users", type=int, help="users in bursts")
@setting("--burst-seconds", type=SECONDS, help="length of each burst")
@setting("--quiet-seconds", type=SECONDS, help="length of each quiet phase")
@setting("--cycles", type=int, help="number of bursts; 0 fits as many as --duration allows")
@setting("--hold-ms", type=MILLISECONDS, help="how long each held request keeps its connection busy (bare numbers: ms)")
@setting("--sample-interval", type=SECONDS, help="seconds between pg_stat_activity samples")
@setting("--scrape-interval", type=SECONDS, help="seconds between scrapes of the workers' pool metrics")
@setting("--prod-max-idle", type=SECONDS, help="production pool max_idle, for the drain prediction")
@setting("--server-log", type=click.Path(), metavar="PATH",
          help="with --dsn: the server's jsonlog, csvlog or stderr log, for exact connection counts (without it, sampled only)")
@setting("--log-line-prefix", metavar="PREFIX",
         help="the log_line_prefix a stderr --server-log was written with; without it, the server's own (SHOW log_line_prefix)")
@setting("--results-dir", type=click.Path(path_type=Path, file_okay=False), help="where run folders go")
@setting("--allow-overcommit", is_flag=True, help="run even when the budget exceeds the usable connections")
@setting("--max-failure-ratio", type=float, help="failed/total requests above which the run fails; same as --threshold failure_ratio<=R")
@setting("--threshold", "thresholds", multiple=True, metavar="EXPR",
          help="fail the run unless this holds, e.g. p95<300ms, failures<0.1%, rps>50, pool_wait_mean<50ms"
               " (repeatable; README: Thresholds)")
@setting("--plotlyjs", type=click.Choice(["inline", "directory"]),
          help="report.html inlines plotly.js (4.6 MB), or loads one plotly.min.js shared beside the run folders; a sweep: directory")
@setting("--ready-timeout", type=SECONDS, help="seconds the server and workers get to become ready")
@setting("--fault", "faults", multiple=True, metavar="KIND@SECONDS",
          help="inject a fault into the load: worker-kill@T, worker-term@T, db-restart@T, db-terminate-idle@T (repeatable)")
@setting("--allow-faults", is_flag=True, help="allow database faults on a --dsn server")
@setting("--app-pattern", type=click.Choice(APP_PATTERNS),
          help="a deliberate anti-pattern of the sample app, as the scenarios use (app/antipatterns.py)")
@setting("--max-requests", type=int, help="gunicorn max_requests: recycle each worker after this many requests; 0 never")
@setting("--preload/--no-preload", help="gunicorn --preload: create the app in the master before forking")
@setting("--server", type=click.Choice(["gunicorn", "uvicorn"]),
         help="what runs the sample app: gunicorn with uvicorn workers, or uvicorn --workers N (its own supervisor)")
@setting("--app-port", type=int, help="port of the first app instance; 0 picks a free one")
@setting("--proxy-idle-cut", type=SECONDS,
          help="put a cloud-proxy emulator between the app and the server: it cuts connections idle this long")
@setting("--proxy-mode", type=click.Choice(["reset", "silent"]),
          help="how the proxy cuts: reset (RST to both sides) or silent (drops, as NAT gateways and load balancers do)")
@setting("--proxy-client-timeout", type=SECONDS,
          help="--proxy-mode silent: a hung request fails after this long, standing for the client's tcp_user_timeout")
@setting("--proxy-listen-port", type=int,
          help="the emulator's port on 127.0.0.1 (0 picks one); with --target-url, the port your app's DSN names")
@setting("--target-url", metavar="URL",
          help="load-test this running app instead of starting the sample app; needs --dsn, its database")
@setting("--pools-per-worker", type=int, help="pools in each worker of a --target-url app, each of --max-size")
@setting("--pool-sizes", callback=pool_sizes_option, metavar="N,N,...",
          help="max_size of each pool in a worker of a --target-url app, e.g. 4,4,10")
@setting("--metrics-url", metavar="URL",
          help="your app's Prometheus endpoint with pool stats (psycopg_pool names); without it, none are scraped")
@setting("--pool", "pools", multiple=True, metavar="KIND:max=N[,min=N,max_idle=S,max_lifetime=S]",
          help="one pool of each worker of a --target-url app, with what is known of it (repeatable, one per pool)")
@setting("--watch-filter", "watch_filter", multiple=True, callback=server_setting, metavar="NAME=VALUE",
          help="count only backends of this database, user or application_name prefix (repeatable)")
@setting("--locustfile", type=click.Path(path_type=Path, dir_okay=False),
          help="your own Locust users instead of the bundled ones; the burst shape still drives them")
@setting("--locust-workers", type=int, help="local Locust workers under one Locust master; 0 runs one Locust process")
@setting("--locust-remote-workers", type=int, help="Locust workers the master waits for from other machines")
@setting("--locust-master-bind", metavar="HOST:PORT",
          help="where the Locust master listens, e.g. 0.0.0.0:5557 for remote workers; without it, a free port on 127.0.0.1")
@setting("--web-ui", is_flag=True,
          help="Locust's web UI instead of headless, with a Database tab; the load starts at once")
@setting("--web-port", type=int, help="port of the web UI on 127.0.0.1")
@setting("--headroom", type=click.FloatRange(0, 100, max_open=True),
          help="percent of the usable connections to keep free; below it is a warning")
@setting("--fail-on-headroom", is_flag=True, help="headroom below --headroom fails the run instead of warning")
@setting("--spread-users", is_flag=True,
          help="the worst case: a new HTTP connection per request, so every worker gets requests and fills its pool")
@common(config=True, json="print summary.json on stdout (loadtests/options/schemas/summary.schema.json); every other line goes to stderr")
def run(json: bool, **options: Any) -> None:
    """Run the sample app under Locust bursts and check its connections against the server.

    Durations take units: 90s, 2m, 1h, 500ms (bare numbers are seconds). Exit codes: 0 pass,
    1 fail, 2 refused or bad input, 130 interrupted.
    """
    from loadtests.run.preflight import preflight
    from loadtests.run.runner import Runner
    from loadtests.run_folder import SUMMARY

    config = make_config(**options)
    try:
        limits = preflight(config)
    except Refused as exc:
        raise BadInput(str(exc)) from None
    with human_lines_to_stderr(json) as stdout:
        runner = Runner(config, limits=limits, echo=lambda line: click.echo(line))
        code = runner.run()
    if json and runner.run_dir is not None and (runner.run_dir / SUMMARY).is_file():
        emit(read_json(runner.run_dir / SUMMARY), stdout)
    sys.exit(code)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@common()
def summarize(run_dir: Path) -> None:
    """Recompute summary.json of a run folder from its data."""
    from loadtests.run_folder import SUMMARY, write_json
    from loadtests.analysis.summary import summarize as compute
    from loadtests.present.junit import write_junit

    summary = compute(run_dir)
    write_json(run_dir / SUMMARY, summary)
    write_junit(run_dir, summary)
    click.echo(f"{summary['verdict']}: " + "; ".join(summary["reasons"]))
