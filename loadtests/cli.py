"""The `poolcheck` command line."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rich_click as click
from pydantic import ValidationError

from app.settings import APP_PATTERNS

from loadtests.budget import Budget, ServerLimits
from loadtests.config import SQLALCHEMY, SQLALCHEMY_DEFAULTS, RunConfig, describe_error
from loadtests.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, EXIT_REFUSED, BadInput, Refused
from loadtests.options import config_file, groups
from loadtests.options.aliases import AliasedOption
from loadtests.options.durations import MILLISECONDS, SECONDS
from loadtests.options.json_output import budget_document, emit, human_lines_to_stderr
from loadtests.redact import redact_dsn
from loadtests.sweep.recommend import Criteria

_CRITERIA = Criteria()  # a sweep's defaults


def _default(name: str) -> Any:
    """RunConfig's default for the setting `name`: the one place a default is written."""
    return RunConfig.model_fields[name].get_default(call_default_factory=True)


def _with_default(help_text: str, name: str, *, flags: tuple[str, str] | None = None) -> str:
    """`help_text` ending in `[default: ...]` from RunConfig; nothing added when there is no default to show.

    `flags` is an on/off pair such as ("--preload", "--no-preload"): the default is the one that applies.
    """
    default = _default(name)
    if isinstance(default, bool):
        shown = (flags[0] if default else flags[1]) if flags else ("on" if default else None)
    elif default is None or (isinstance(default, (tuple, dict)) and not default):
        shown = None
    else:
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    return help_text if shown is None else f"{help_text}  [default: {shown}]"


def _setting(*decls: str, help: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option of `poolcheck run` for the RunConfig field it names, its help showing RunConfig's default.

    The option's own default stays None (or empty): a setting not given on
    the command line must not override the same setting in a --config file.
    """
    names = [d for d in decls if d.isidentifier()]
    first, _, off = decls[0].partition("/")
    name = names[0] if names else first.lstrip("-").replace("-", "_")
    if attrs.get("is_flag") or off:
        attrs["default"] = None  # click's own default for a flag is False, which would override the file
    return click.option(*decls, help=_with_default(help, name, flags=(first, off) if off else None), **attrs)


def _config(**options: Any) -> RunConfig:
    """The run's settings: those given (flags, POOLCHECK_* variables, the --config file), then RunConfig's defaults."""
    try:
        return RunConfig(**{k: v for k, v in options.items() if v is not None and v != () and v != {}})
    except ValidationError as exc:
        raise BadInput(describe_error(exc)) from None


def _verbosity(ctx: click.Context, param: click.Parameter, verbose: bool) -> None:
    if verbose or not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            force=verbose,
        )


def _common(*, config: bool = False, json: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every command has: -v (also after the subcommand), and where they apply --config and --json."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option("-v", "--verbose", is_flag=True, expose_value=False, is_eager=True, callback=_verbosity,
                                help="Log what the harness does.")(function)
        if config:
            function = click.option(
                "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                is_eager=True, expose_value=False, callback=config_file.load,
                help="TOML file: its [run], [sweep] or [budget] table (or [tool.poolcheck.*] in a pyproject.toml);"
                     " options given here override it  [default: ./poolcheck.toml, else ./pyproject.toml's [tool.poolcheck]]",
            )(function)
        if json:
            function = click.option("--json", "json", is_flag=True, help=json)(function)
        return function

    return decorate


def _server_setting(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        settings[name.strip()] = setting.strip()
    return settings


def _pool_sizes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(size) for size in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated pool sizes, e.g. 4,4,10, got {value!r}") from None


# Every option is also read from POOLCHECK_<COMMAND>_<OPTION> (POOLCHECK_RUN_MAX_SIZE=4), and --dsn from POOLCHECK_DSN.
@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "POOLCHECK"})
# Off a terminal (CI logs, pipes) rich assumes 80 columns, too few for the longest option names.
@click.rich_config(help_config=click.RichHelpConfiguration(width=None if sys.stdout.isatty() else 100, max_width=120))
@click.option("-v", "--verbose", is_flag=True, is_eager=True, expose_value=False, callback=_verbosity,
              help="Log what the harness does.")
@click.version_option(package_name="poolcheck")
def cli() -> None:
    """poolcheck: do your app's connection pools fit your PostgreSQL server?"""


@cli.command()
@_setting("--workers", type=int, help="gunicorn workers per host, each with its own pool")
@_setting("--hosts", type=int, help="app instances, each a gunicorn with --workers workers")
@_setting("--min-size", type=int, help="pool min_size per worker")
@_setting("--max-size", type=int, help="pool max_size per worker")
@_setting("--pool-kind", type=click.Choice(["async", "sync", "asyncpg", SQLALCHEMY]),
          help="psycopg AsyncConnectionPool, ConnectionPool, an asyncpg pool, or a SQLAlchemy engine")
@_setting("--pool-size", type=int,
          help=f"SQLAlchemy pool_size per worker, instead of --max-size  [default: {SQLALCHEMY_DEFAULTS['pool_size']}, SQLAlchemy's]")
@_setting("--max-overflow", type=int,
          help=f"SQLAlchemy max_overflow per worker: connections beyond --pool-size  [default: {SQLALCHEMY_DEFAULTS['max_overflow']}, SQLAlchemy's]")
@_setting("--pool-timeout", type=SECONDS, help="seconds a request waits for a connection")
@_setting("--max-idle", type=SECONDS, help="pool max_idle seconds")
@_setting("--max-lifetime", type=SECONDS, help="pool max_lifetime seconds")
@_setting("--max-waiting", type=int, help="pool max_waiting; 0 is unbounded")
@_setting("--pool-check/--no-pool-check", help="check connections before use")
@_setting("--prepared-statements/--no-prepared-statements",
          help="server-side prepared statements: asyncpg's statement cache, psycopg's prepare_threshold")
@_setting("--pgbouncer", type=click.Choice(["transaction", "session"]),
          help="start a real PgBouncer in this pool mode between the app and the embedded server")
@_setting("--pgbouncer-pool-size", type=int, help="PgBouncer's default_pool_size: server connections per database/user  [default: 20, PgBouncer's]")
@_setting("--pgbouncer-reserve-pool-size", type=int, help="PgBouncer's reserve_pool_size  [default: 0, PgBouncer's]")
@_setting("--pgbouncer-max-client-conn", type=int, help="PgBouncer's max_client_conn  [default: 100, PgBouncer's]")
@_setting("--max-connections", type=int, help="embedded server's max_connections")
@_setting("--superuser-reserved-connections", type=int, help="embedded server's superuser_reserved_connections")
@_setting("--reserved-connections", type=int, help="embedded server's reserved_connections")
@_setting("--server-setting", "server_settings", multiple=True, callback=_server_setting, metavar="NAME=VALUE",
          help="any other embedded server setting, e.g. idle_session_timeout=5s (repeatable)")
@_setting("--dsn", envvar="POOLCHECK_DSN", show_envvar=True,
          help="use this existing server instead of the embedded one (read-only)")
@_setting("--other-clients", type=int, help="connections other clients hold, counted in the budget")
@_setting("--duration", type=SECONDS, help="seconds of load")
@_setting("--baseline-users", type=int, help="users in quiet phases")
@_setting("--burst-users", type=int, help="users in bursts")
@_setting("--burst-seconds", type=SECONDS, help="length of each burst")
@_setting("--quiet-seconds", type=SECONDS, help="length of each quiet phase")
@_setting("--cycles", type=int, help="number of bursts; 0 fits as many as --duration allows")
@_setting("--hold-ms", type=MILLISECONDS, help="how long each held request keeps its connection busy (bare numbers: ms)")
@_setting("--sample-interval", type=SECONDS, help="seconds between pg_stat_activity samples")
@_setting("--scrape-interval", type=SECONDS, help="seconds between scrapes of the workers' pool metrics")
@_setting("--prod-max-idle", type=SECONDS, help="production pool max_idle, for the drain prediction")
@_setting("--server-log", type=click.Path(), metavar="PATH",
          help="with --dsn: the server's jsonlog or csvlog, for exact connection counts (without it, sampled only)")
@_setting("--results-dir", type=click.Path(path_type=Path, file_okay=False), help="where run folders go")
@_setting("--allow-overcommit", is_flag=True, help="run even when the budget exceeds the usable connections")
@_setting("--max-failure-ratio", type=float, help="failed/total requests above which the run fails; same as --threshold failure_ratio<=R")
@_setting("--threshold", "thresholds", multiple=True, metavar="EXPR",
          help="fail the run unless this holds, e.g. p95<300ms, failures<0.1%, rps>50, pool_wait_mean<50ms"
               " (repeatable; README: Thresholds)")
@_setting("--plotlyjs", type=click.Choice(["inline", "directory"]),
          help="report.html inlines plotly.js (4.6 MB), or loads one plotly.min.js shared beside the run folders; a sweep: directory")
@_setting("--ready-timeout", type=SECONDS, help="seconds the server and workers get to become ready")
@_setting("--fault", "faults", multiple=True, metavar="KIND@SECONDS",
          help="inject a fault into the load: worker-kill@T, worker-term@T, db-restart@T, db-terminate-idle@T (repeatable)")
@_setting("--allow-faults", is_flag=True, help="allow database faults on a --dsn server")
@_setting("--app-pattern", type=click.Choice(APP_PATTERNS),
          help="a deliberate anti-pattern of the sample app, as the scenarios use (app/antipatterns.py)")
@_setting("--max-requests", type=int, help="gunicorn max_requests: recycle each worker after this many requests; 0 never")
@_setting("--preload/--no-preload", help="gunicorn --preload: create the app in the master before forking")
@_setting("--server", type=click.Choice(["gunicorn", "uvicorn"]),
          help="what runs the sample app: gunicorn with uvicorn workers, or uvicorn --workers N (its own supervisor)")
@_setting("--app-port", type=int, help="port of the first app instance; 0 picks a free one")
@_setting("--proxy-idle-cut", type=SECONDS,
          help="put a cloud-proxy emulator between the app and the server: it cuts connections idle this long")
@_setting("--proxy-mode", type=click.Choice(["reset", "silent"]),
          help="how the proxy cuts: reset (RST to both sides) or silent (drops, as NAT gateways and load balancers do)")
@_setting("--proxy-client-timeout", type=SECONDS,
          help="--proxy-mode silent: a hung request fails after this long, standing for the client's tcp_user_timeout")
@_setting("--target-url", metavar="URL",
          help="load-test this running app instead of starting the sample app; needs --dsn, its database")
@_setting("--pools-per-worker", type=int, help="pools in each worker of a --target-url app, each of --max-size")
@_setting("--pool-sizes", callback=_pool_sizes, metavar="N,N,...",
          help="max_size of each pool in a worker of a --target-url app, e.g. 4,4,10")
@_setting("--metrics-url", metavar="URL",
          help="your app's Prometheus endpoint with pool stats (psycopg_pool names); without it, none are scraped")
@_setting("--pool", "pools", multiple=True, metavar="KIND:max=N[,min=N,max_idle=S,max_lifetime=S]",
          help="one pool of each worker of a --target-url app, with what is known of it (repeatable, one per pool)")
@_setting("--watch-filter", "watch_filter", multiple=True, callback=_server_setting, metavar="NAME=VALUE",
          help="count only backends of this database, user or application_name prefix (repeatable)")
@_setting("--locustfile", type=click.Path(path_type=Path, dir_okay=False),
          help="your own Locust users instead of the bundled ones; the burst shape still drives them")
@_setting("--locust-workers", type=int, help="local Locust workers under one Locust master; 0 runs one Locust process")
@_setting("--locust-remote-workers", type=int, help="Locust workers the master waits for from other machines")
@_setting("--locust-master-bind", metavar="HOST:PORT",
          help="where the Locust master listens, e.g. 0.0.0.0:5557 for remote workers; without it, a free port on 127.0.0.1")
@_setting("--web-ui", is_flag=True,
          help="Locust's web UI instead of headless, with a Database tab; the load starts at once")
@_setting("--web-port", type=int, help="port of the web UI on 127.0.0.1")
@_setting("--headroom", type=click.FloatRange(0, 100, max_open=True),
          help="percent of the usable connections to keep free; below it is a warning")
@_setting("--fail-on-headroom", is_flag=True, help="headroom below --headroom fails the run instead of warning")
@_setting("--spread-users", is_flag=True,
          help="the worst case: a new HTTP connection per request, so every worker gets requests and fills its pool")
@_common(config=True, json="print summary.json on stdout (results/schema/summary.schema.json); every other line goes to stderr")
def run(json: bool, **options: Any) -> None:
    """Run the sample app under Locust bursts and check its connections against the server.

    Durations take units: 90s, 2m, 1h, 500ms (bare numbers are seconds). Exit codes: 0 pass,
    1 fail, 2 refused or bad input, 130 interrupted.
    """
    from loadtests.run.preflight import preflight
    from loadtests.run.runner import Runner
    from loadtests.run_folder import SUMMARY

    config = _config(**options)
    try:
        limits = preflight(config)
    except Refused as exc:
        raise BadInput(str(exc)) from None
    with human_lines_to_stderr(json) as stdout:
        runner = Runner(config, limits=limits, echo=lambda line: click.echo(line))
        code = runner.run()
    if json and runner.run_dir is not None and (runner.run_dir / SUMMARY).is_file():
        emit(_read_json(runner.run_dir / SUMMARY), stdout)
    sys.exit(code)


def _read_json(path: Path) -> Any:
    import json

    return json.loads(path.read_text())


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@_common()
def summarize(run_dir: Path) -> None:
    """Recompute summary.json of a run folder from its data."""
    from loadtests.run_folder import SUMMARY, write_json
    from loadtests.analysis.summary import summarize as compute
    from loadtests.present.junit import write_junit

    summary = compute(run_dir)
    write_json(run_dir / SUMMARY, summary)
    write_junit(run_dir, summary)
    click.echo(f"{summary['verdict']}: " + "; ".join(summary["reasons"]))


def _given_or_default(value: int | None, name: str) -> int:
    return _default(name) if value is None else value


def _budget_limits(dsn: str | None, **given: int | None) -> ServerLimits:
    """The server's limits: read from `dsn` (read-only), else the options, with PostgreSQL's defaults."""
    from loadtests.run.preflight import read_server_limits

    if dsn is not None:
        if any(value is not None for value in given.values()):
            raise BadInput("--dsn reads max_connections and the reserved settings from the server; give one or the other")
        try:
            return read_server_limits(dsn)[0]
        except Refused as exc:
            raise BadInput(str(exc)) from None
    if given["max_connections"] is None:
        raise BadInput("--max-connections: required (or --dsn to read it from a running server)")
    limits = ServerLimits(
        max_connections=given["max_connections"],
        superuser_reserved_connections=_given_or_default(given["superuser_reserved_connections"], "superuser_reserved_connections"),
        reserved_connections=_given_or_default(given["reserved_connections"], "reserved_connections"),
    )
    if limits.usable <= 0:
        raise BadInput(f"--max-connections ({limits.max_connections}) must exceed the reserved slots")
    return limits


def _budget_plan(*, max_size: int | None, pool_size: int | None, max_overflow: int | None, **counts: int) -> Budget:
    """A psycopg or asyncpg pool's max_size, or a SQLAlchemy engine's pool_size + max_overflow, never both."""
    from loadtests.config import MAX_POOL

    if pool_size is None and max_overflow is None:
        if max_size is None:
            raise BadInput("--max-size (psycopg, asyncpg) or --pool-size (SQLAlchemy): one is required")
        return Budget(max_size=max_size, **counts)
    if max_size is not None:
        raise BadInput("--max-size: a SQLAlchemy engine holds --pool-size + --max-overflow; give those, not --max-size")
    pool_size = SQLALCHEMY_DEFAULTS["pool_size"] if pool_size is None else pool_size
    max_overflow = SQLALCHEMY_DEFAULTS["max_overflow"] if max_overflow is None else max_overflow
    if pool_size + max_overflow > MAX_POOL:
        raise BadInput(f"--pool-size + --max-overflow: at most {MAX_POOL} connections per engine, got {pool_size + max_overflow}")
    return Budget.for_engines(pool_size=pool_size, max_overflow=max_overflow, **counts)


def _from_run_config(*decls: str, help: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option of another command for a RunConfig field, with RunConfig's default (shown, and applied)."""
    name = decls[0].lstrip("-").replace("-", "_")
    return click.option(*decls, default=_default(name), show_default=True, help=help, **attrs)


@cli.command("budget")
@_from_run_config("--hosts", type=click.IntRange(min=1), help="app instances")
@click.option("--workers", type=click.IntRange(min=1), required=True, help="workers per host, each with its own pools")
@click.option("--max-size", type=click.IntRange(min=1), help="max_size of each psycopg or asyncpg pool")
@click.option("--pool-size", type=click.IntRange(min=1), help="pool_size of each SQLAlchemy engine, instead of --max-size")
@click.option("--max-overflow", type=click.IntRange(min=0),
              help=f"max_overflow of each SQLAlchemy engine: connections beyond --pool-size  [default: {SQLALCHEMY_DEFAULTS['max_overflow']}, SQLAlchemy's]")
@_from_run_config("--pools-per-worker", type=click.IntRange(min=1), help="pools in each worker")
@_from_run_config("--other-clients", type=click.IntRange(min=0),
                  help="connections other clients hold (cron jobs, admin sessions, migrations)")
@click.option("--max-connections", type=click.IntRange(min=1), help="the server's max_connections")
@click.option("--superuser-reserved-connections", cls=AliasedOption, old_names=("--superuser-reserved",),
              type=click.IntRange(min=0),
              help=_with_default("the server's superuser_reserved_connections", "superuser_reserved_connections"))
@click.option("--reserved-connections", cls=AliasedOption, old_names=("--reserved",), type=click.IntRange(min=0),
              help=_with_default("the server's reserved_connections", "reserved_connections"))
@click.option("--dsn", envvar="POOLCHECK_DSN", show_envvar=True,
              help="read max_connections and the reserved settings from this server (read-only)")
@click.option("--pool-sizes", callback=_pool_sizes, metavar="N,N,...",
              help="max_size of each pool in a worker, when they differ, e.g. 4,4,10 (instead of --max-size)")
@click.option("--headroom", type=click.FloatRange(0, 100, max_open=True), default=20.0, show_default=True,
              help="percent of the usable connections to keep free; the answer line keeps it")
@click.option("--surge-hosts", type=click.IntRange(min=0), default=0, show_default=True,
              help="hosts added during a rolling deploy, each with full pools, before the old ones stop")
@click.option("--fail-on-headroom", is_flag=True, help="exit 1 when the headroom is not kept, not only when it does not fit")
@_common(config=True, json="print the budget, the limits and the fit as JSON on stdout (results/schema/budget.schema.json)")
def budget_command(
    hosts: int, workers: int, max_size: int | None, pool_size: int | None, max_overflow: int | None,
    pools_per_worker: int, other_clients: int, dsn: str | None, pool_sizes: tuple[int, ...] | None,
    headroom: float, surge_hosts: int, fail_on_headroom: bool, json: bool, **limits: int | None
) -> None:
    """Check hosts x workers x pools x max_size (or pool_size + max_overflow) against max_connections: instant, no load.

    Ends with one answer line: the largest pool size that keeps --headroom with --surge-hosts more hosts.
    Exit codes: 0 fits (during the deploy too), 1 does not fit, 2 bad input.
    """
    from loadtests.budget import describe
    from loadtests.budget_answer import answer, answer_lines, pool_sizes_plan

    if pool_sizes is not None:
        try:
            plan = pool_sizes_plan(pool_sizes, hosts=hosts, workers=workers, extra_clients=other_clients,
                                   max_size=max_size, pool_size=pool_size, max_overflow=max_overflow,
                                   pools_per_worker=pools_per_worker)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    else:
        plan = _budget_plan(hosts=hosts, workers=workers, max_size=max_size, pool_size=pool_size, max_overflow=max_overflow,
                            pools_per_worker=pools_per_worker, extra_clients=other_clients)
    server = _budget_limits(dsn, **limits)
    with human_lines_to_stderr(json) as stdout:
        if dsn is not None:
            click.echo(f"limits read from {redact_dsn(dsn)}")
        # With pools of several sizes, "largest max_size per pool" would not say which pool: the answer line does.
        for line in describe(plan, server)[: 2 if plan.pool_sizes else None]:
            click.echo(line)
        for line in answer_lines(plan, server, headroom_ratio=headroom / 100, surge_hosts=surge_hosts):
            click.echo(line)
    if json:
        emit(budget_document(plan, server, limits_from="dsn" if dsn is not None else "options"), stdout)
    found = answer(plan, server, headroom_ratio=headroom / 100, surge_hosts=surge_hosts)
    sys.exit(EXIT_PASS if found.fits_now and (found.keeps_headroom or not fail_on_headroom) else EXIT_FAIL)


# Run's options a sweep takes for every cell: all but its axes and what it refuses (a sweep
# starts a fresh embedded server and the sample app for every cell).
_SWEPT = ("workers", "max_size", "pool_kind", "duration", "headroom")
_REFUSED_BY_SWEEP = ("dsn", "server_log", "target_url", "pools_per_worker", "pool_sizes", "watch_filter",
                     "allow_faults", "web_ui", "web_port")


@cli.command()
@click.option("--workers", default="1,2,4", show_default=True, help="worker counts per host to try")
@click.option("--max-size", default="2,4,8", show_default=True, help="pool max_size values to try")
@click.option("--pool-kind", default="async", show_default=True, help="pool kinds to try: async, sync, asyncpg, sqlalchemy, e.g. async,sync")
@click.option("--repeat", type=click.IntRange(1, 20), default=1, show_default=True,
              help="runs per cell; the table shows the median and the spread")
@click.option("--headroom", type=click.FloatRange(0, 100, max_open=True), default=_CRITERIA.headroom_ratio * 100,
              show_default=True, help="percent of the usable connections a recommended cell leaves free")
@click.option("--slo-p95-ms", type=click.FloatRange(min=0, min_open=True), help="p95 a recommended cell must meet [none]")
@click.option("--duration", type=SECONDS, default=20.0, show_default=True,
              help="length of the load per cell; each cell must hold a full burst")
@click.option("--search", is_flag=True, help="run only the cells that decide the recommendation, not the whole grid")
@_common(config=True, json="print sweep_summary.json on stdout (results/schema/sweep.schema.json); every other line goes to stderr")
def sweep(
    workers: str, max_size: str, pool_kind: str, repeat: int, headroom: float, slo_p95_ms: float | None, search: bool,
    json: bool, **options: Any,
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
        }
        base = _config(**{**options, "plotlyjs": options.get("plotlyjs") or "directory"}, headroom=headroom)  # one plotly.js per sweep
        criteria = Criteria(headroom_ratio=headroom / 100, slo_p95_ms=slo_p95_ms, max_failure_ratio=base.max_failure_ratio)
        job = Sweep(plan_cells(base, **axes), repeat=repeat, criteria=criteria, echo=click.echo, search=search)
    except Refused as exc:
        raise BadInput(str(exc)) from None
    with human_lines_to_stderr(json) as stdout:
        code = job.run()
    if json and job.sweep_dir is not None and (job.sweep_dir / SWEEP_SUMMARY).is_file():
        emit(_read_json(job.sweep_dir / SWEEP_SUMMARY), stdout)
    sys.exit(code)


sweep.params.extend(
    param for param in run.params if param.name not in _SWEPT + _REFUSED_BY_SWEEP + ("verbose", "config_file", "json")
)


def _run_folders(paths: tuple[Path, ...]) -> list[Path]:
    """Folders that hold a run: a manifest.json at least."""
    from loadtests.run_folder import MANIFEST

    for path in paths:
        if not (path / MANIFEST).is_file():
            raise BadInput(f"{path}: not a run folder (no {MANIFEST})")
    return list(paths)


@cli.command()
@click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False, exists=True))
@_common()
def report(run_dir: Path) -> None:
    """Write RUN_DIR/report.html again from the run folder's data alone."""
    from loadtests.present.report import write_run_report

    (folder,) = _run_folders((run_dir,))
    click.echo(str(write_run_report(folder)))


@cli.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="where the HTML page goes [compare-<runs>.html beside the first run]")
@click.option("--plotlyjs", type=click.Choice(["inline", "directory"]), default="directory", show_default=True,
              help="inline plotly.js in the page, or load the plotly.min.js beside it (written if missing)")
@_common(json="print the comparison as JSON on stdout (results/schema/compare.schema.json); the table goes to stderr")
def compare(run_dirs: tuple[Path, ...], out: Path | None, plotlyjs: str, json: bool) -> None:
    """Compare runs side by side: a terminal table and an HTML page; deltas against the first run."""
    from loadtests.present.compare import compare as compare_runs, comparison

    if len(run_dirs) < 2:
        raise BadInput("compare: give two run folders or more")
    folders = _run_folders(run_dirs)
    with human_lines_to_stderr(json) as stdout:
        page = compare_runs(folders, out=out, plotlyjs=plotlyjs)
        click.echo(str(page))
    if json:
        emit(comparison(folders, page=page), stdout)


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="NAME... | all")
@click.option("--results-dir", type=click.Path(path_type=Path, file_okay=False), default=_default("results_dir"),
              show_default=True, help="where the scenario folders go")
@_common()
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
@_common()
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


for _command in cli.commands.values():
    groups.place(_command.params)
# A sweep's --workers, --max-size and --pool-kind are its axes: lists of values to try.
groups.place(sweep.params, own={name: groups.CELLS for name in _SWEPT if name != "duration"})


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


if __name__ == "__main__":
    main()
