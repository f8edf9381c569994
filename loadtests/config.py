"""One run's configuration: built once from the CLI, validated, passed to every part."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.settings import APP_PATTERNS, check_pattern_pool_kind

from loadtests.addresses import check_locustfile, check_target_url, parse_bind
from loadtests.budget import PoolerBudget, PoolerSettings
from loadtests.config_views import COLLECTOR_CLIENTS, RunConfigViews
from loadtests.pools import parse_pool
from loadtests.faults import DATABASE_FAULTS, DB_RESTART, WORKER_FAULTS, parse_fault
from loadtests.redact import redact_dsn
from loadtests.shapes import BURST, DEFAULT_LOAD
from loadtests.sources.attribution import parse_watch_filter
from loadtests.thresholds import parse_threshold
from loadtests.sources.server_log import STDERR, log_format, looks_like_server_log, stderr_problem

PGBOUNCER_DEFAULTS = {"pgbouncer_pool_size": 20, "pgbouncer_reserve_pool_size": 0, "pgbouncer_max_client_conn": 100}
PGBOUNCER_ADMIN_CLIENTS = 1  # the SHOW POOLS sampler is one of PgBouncer's clients

SQLALCHEMY = "sqlalchemy"
SQLALCHEMY_DEFAULTS = {"pool_size": 5, "max_overflow": 10}  # create_async_engine's own
MAX_POOL = 1000  # the most connections one pool may hold, as the options allow


class RunConfig(RunConfigViews, BaseModel):
    """Every setting of a run; field names are the CLI's long options."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Deployment under test
    hosts: int = Field(1, ge=1, le=16, description="app instances (gunicorn masters), each with --workers")
    workers: int = Field(4, ge=1, le=64)
    pool_kind: Literal["async", "sync", "asyncpg", "sqlalchemy"] = "async"
    min_size: int = Field(1, ge=0, le=MAX_POOL)
    max_size: int = Field(8, ge=1, le=MAX_POOL, description="most connections one pool holds; an engine's pool_size + max_overflow")
    # SQLAlchemy's names (--pool-kind sqlalchemy, or an app of your own that uses SQLAlchemy engines)
    pool_size: int | None = Field(None, ge=1, le=MAX_POOL)
    max_overflow: int | None = Field(None, ge=0, le=MAX_POOL)
    pool_timeout: float = Field(5.0, gt=0, le=600)
    max_idle: float = Field(600.0, gt=0)
    max_lifetime: float = Field(3600.0, gt=0)
    max_waiting: int = Field(0, ge=0)
    pool_check: bool = True
    prepared_statements: bool = Field(True, description="asyncpg's statement cache and psycopg's prepare_threshold")
    other_clients: int = Field(0, ge=0, le=10_000)

    # Server
    dsn: str | None = None
    max_connections: int = Field(40, ge=5, le=10_000)
    superuser_reserved_connections: int = Field(3, ge=0, le=100)
    reserved_connections: int = Field(0, ge=0, le=100)
    server_settings: dict[str, str] = Field(default_factory=dict)

    # Load
    duration: float = Field(DEFAULT_LOAD.total_seconds, gt=0, le=24 * 3600)
    baseline_users: int = Field(DEFAULT_LOAD.baseline_users, ge=0, le=10_000)
    burst_users: int = Field(DEFAULT_LOAD.burst_users, ge=1, le=10_000)
    burst_seconds: float = Field(DEFAULT_LOAD.burst_seconds, gt=0)
    quiet_seconds: float = Field(DEFAULT_LOAD.quiet_seconds, gt=0)
    cycles: int = Field(DEFAULT_LOAD.cycles, ge=0, description="bursts to run; 0 runs as many as fit in --duration")
    hold_ms: int = Field(DEFAULT_LOAD.hold_ms, ge=0, le=10_000)
    # The worst case on demand: a new HTTP connection per request, so gunicorn hands each request to
    # whichever worker accepts it and every worker's pool fills (keep-alive users stick to one worker).
    spread_users: bool = False

    # Headroom: the share of usable connections left free with every pool full (loadtests/analysis/headroom.py)
    headroom: float = Field(20.0, ge=0, lt=100, description="percent of the usable connections to keep free")
    fail_on_headroom: bool = False

    # Harness
    sample_interval: float = Field(0.1, ge=0.01, le=60)
    results_dir: Path = Path("results")
    allow_overcommit: bool = False
    max_failure_ratio: float = Field(0.0, ge=0, le=1)
    thresholds: tuple[str, ...] = Field((), description="limits on the run's figures, e.g. p95<300ms (loadtests/thresholds.py)")
    # Figures the run shows by design (words of a line -> why), as a scenario's fixed half declares them.
    expected_notes: dict[str, str] = Field(default_factory=dict)
    plotlyjs: Literal["inline", "directory"] = Field("inline", description="report.html inlines plotly.js, or shares one plotly.min.js beside the run folders")
    ready_timeout: float = Field(60.0, gt=0)
    app_port: int = Field(0, ge=0, le=65535, description="port of the first app instance; 0 picks a free one")
    web_ui: bool = False
    web_port: int = Field(8089, ge=1, le=65535)

    # Pool telemetry and exact accounting (loadtests/sources/scraper.py, loadtests/analysis/exact_counts.py, loadtests/analysis/lifecycle.py)
    scrape_interval: float = Field(1.0, ge=0.1, le=60, description="seconds between /metrics scrapes")
    prod_max_idle: float = Field(600.0, gt=0, description="production max_idle for the drain prediction")
    server_log: Path | None = None
    # The stderr log's prefix; None: the server's own, read through --dsn (loadtests/sources/stderr_log.py)
    log_line_prefix: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _engine_max_size(cls, data: Any) -> Any:
        """A SQLAlchemy engine holds at most pool_size + max_overflow: that is its max_size."""
        if not isinstance(data, dict):
            return data
        sizes = {name: data.get(name) for name in SQLALCHEMY_DEFAULTS}
        given = any(value is not None for value in sizes.values())
        if data.get("pool_kind") != SQLALCHEMY and not (given and data.get("target_url") is not None):
            if given:
                raise ValueError("--pool-size and --max-overflow: SQLAlchemy's pool sizes, for --pool-kind sqlalchemy"
                                 " or a --target-url app of SQLAlchemy engines")
            return data
        sizes = {name: SQLALCHEMY_DEFAULTS[name] if value is None else value for name, value in sizes.items()}
        size, overflow = sizes["pool_size"], sizes["max_overflow"]
        if not all(type(value) is int for value in (size, overflow)) or not (1 <= size <= MAX_POOL and 0 <= overflow <= MAX_POOL):
            return {**data, **sizes}  # the fields' own checks name the option
        if size + overflow > MAX_POOL:
            raise ValueError(f"--pool-size + --max-overflow: at most {MAX_POOL} connections per engine, got {size + overflow}")
        if data.get("max_size") is not None and data["max_size"] != size + overflow:
            raise ValueError("--max-size: a SQLAlchemy engine holds --pool-size + --max-overflow; give those, not --max-size")
        return {**data, **sizes, "max_size": size + overflow}

    @property
    def engines(self) -> bool:
        """Pools sized as SQLAlchemy engines: pool_size + max_overflow."""
        return self.max_overflow is not None

    @field_validator("server_log")
    @classmethod
    def _readable_server_log(cls, path: Path | None) -> Path | None:
        if path is not None and not (path.is_file() and os.access(path, os.R_OK)):
            raise ValueError("not a readable file: give the server's jsonlog, csvlog or stderr log")
        if path is not None and log_format(path) != STDERR and not looks_like_server_log(path):
            raise ValueError("not a PostgreSQL jsonlog or csvlog (its first line has no log timestamp);"
                             " set log_destination to jsonlog or csvlog")
        return path

    @model_validator(mode="after")
    def _server_log_with_dsn(self) -> "RunConfig":
        if self.server_log is not None and self.dsn is None:
            raise ValueError("--server-log: only with --dsn; the embedded server's log is read already")
        if self.log_line_prefix is not None and self.server_log is None:
            raise ValueError("--log-line-prefix: only with --server-log, a stderr log")
        if self.server_log is not None and self.log_line_prefix is not None and log_format(self.server_log) == STDERR:
            # Without --log-line-prefix the server's own is read before the run (loadtests/run/preflight.py).
            problem = stderr_problem(self.server_log, prefix=self.log_line_prefix)
            if problem:
                raise ValueError(f"--server-log {self.server_log}: {problem}")
        return self

    # PgBouncer between the app and the embedded server (loadtests/run/pgbouncer.py); None: PgBouncer's default
    pgbouncer: Literal["transaction", "session"] | None = None
    pgbouncer_pool_size: int | None = Field(None, ge=1, le=MAX_POOL, description="default_pool_size")
    pgbouncer_reserve_pool_size: int | None = Field(None, ge=0, le=MAX_POOL, description="reserve_pool_size")
    pgbouncer_max_client_conn: int | None = Field(None, ge=1, le=100_000, description="max_client_conn")

    @model_validator(mode="after")
    def _pgbouncer_options(self) -> "RunConfig":
        sized = [name for name in PGBOUNCER_DEFAULTS if getattr(self, name) is not None]
        if sized and self.pgbouncer is None:
            raise ValueError(f"--{sized[0].replace('_', '-')}: sizes PgBouncer's pools; needs --pgbouncer transaction|session")
        if self.pgbouncer is not None and self.dsn is not None:
            raise ValueError("--pgbouncer: starts PgBouncer in front of the embedded server only, not a --dsn server")
        return self

    @model_validator(mode="after")
    def _psycopg_pool_options(self) -> "RunConfig":
        """A SQLAlchemy engine has no min_size, max_idle or max_waiting: say so rather than ignore them."""
        if self.pool_kind == SQLALCHEMY:
            # A value other than the default: a config rebuilt from model_dump() (a sweep cell) sets every field.
            given = [name for name in ("min_size", "max_idle", "max_waiting")
                     if name in self.model_fields_set and getattr(self, name) != type(self).model_fields[name].default]
            if given:
                raise ValueError(f"--{given[0].replace('_', '-')}: psycopg's pool setting; a SQLAlchemy engine has none"
                                 " (it keeps --pool-size and closes the overflow on return)")
        return self

    def pooler(self) -> PoolerSettings | None:
        """PgBouncer's pool settings for this run, PgBouncer's own defaults where none is given; None without --pgbouncer."""
        if self.pgbouncer is None:
            return None
        sizes = {name: PGBOUNCER_DEFAULTS[name] if getattr(self, name) is None else getattr(self, name)
                 for name in PGBOUNCER_DEFAULTS}
        return PoolerSettings(
            pool_mode=self.pgbouncer,
            default_pool_size=sizes["pgbouncer_pool_size"],
            reserve_pool_size=sizes["pgbouncer_reserve_pool_size"],
            max_client_conn=sizes["pgbouncer_max_client_conn"],
        )

    @property
    def pooler_budget(self) -> PoolerBudget | None:
        """The two levels behind PgBouncer; None without it."""
        pooler = self.pooler()
        if pooler is None:
            return None
        return PoolerBudget(
            clients=self.budget,
            default_pool_size=pooler.default_pool_size,
            reserve_pool_size=pooler.reserve_pool_size,
            max_client_conn=pooler.max_client_conn,
            admin_clients=PGBOUNCER_ADMIN_CLIENTS,
            server_extra_clients=COLLECTOR_CLIENTS + self.other_clients,
        )

    # Failure scenarios (loadtests/scenarios/catalog.py): a deliberate anti-pattern of the sample app, worker churn
    app_pattern: str = Field("default", description="APP_PATTERN of the sample app (app/antipatterns.py)")
    max_requests: int = Field(0, ge=0, le=1_000_000, description="gunicorn max_requests: recycle a worker after this many; 0 never")
    preload: bool = Field(False, description="gunicorn --preload: create the app in the master, before the fork")
    # The sample app's server: gunicorn with uvicorn workers, or uvicorn's own --workers supervisor (README "uvicorn --workers")
    server: Literal["gunicorn", "uvicorn"] = Field("gunicorn", description="what runs the sample app's workers")

    @field_validator("app_pattern")
    @classmethod
    def _known_app_pattern(cls, pattern: str) -> str:
        if pattern not in APP_PATTERNS:
            raise ValueError(f"unknown pattern; known: {', '.join(APP_PATTERNS)}")
        return pattern

    @model_validator(mode="after")
    def _pattern_fits_pool_kind(self) -> "RunConfig":
        check_pattern_pool_kind(self.app_pattern, self.pool_kind, names=("--app-pattern", "--pool-kind"))
        if self.target_url is not None and (self.app_pattern != "default" or self.max_requests or self.preload):
            raise ValueError("--app-pattern, --max-requests and --preload set up the sample app, not a --target-url app")
        if self.server == "uvicorn" and self.preload:
            # uvicorn's supervisor spawns each worker afresh and imports the app there: there is no master to preload in.
            raise ValueError("--preload is gunicorn's: uvicorn --workers imports the app in each worker, never in a master")
        return self

    # Faults injected during the load (loadtests/faults.py)
    faults: tuple[str, ...] = ()
    allow_faults: bool = False

    # The cloud-proxy emulator between the app and the server (loadtests/proxy/, README "Behind a cloud proxy")
    proxy_idle_cut: float | None = Field(None, gt=0, description="seconds idle after which the proxy cuts a connection")
    proxy_mode: Literal["reset", "silent"] = "reset"
    proxy_client_timeout: float | None = Field(None, gt=0, description="silent mode: seconds a hung request lasts")
    # An app of your own reaches the emulator on a port it was told beforehand; the sample app's is free (0).
    proxy_listen_port: int = Field(0, ge=0, le=65535, description="the emulator's port on 127.0.0.1; 0 picks a free one")

    @model_validator(mode="after")
    def _proxy_options(self) -> "RunConfig":
        if self.proxy_idle_cut is None and (self.proxy_mode != "reset" or self.proxy_client_timeout is not None):
            raise ValueError("--proxy-mode and --proxy-client-timeout: need --proxy-idle-cut S, the proxy's idle cut")
        if self.proxy_client_timeout is not None and self.proxy_mode != "silent":
            raise ValueError("--proxy-client-timeout: only with --proxy-mode silent (a reset ends the request at once)")
        if self.proxy_listen_port and self.proxy_idle_cut is None:
            raise ValueError("--proxy-listen-port: the emulator's port; needs --proxy-idle-cut S")
        if self.proxy_idle_cut is not None and self.target_url is not None and not self.proxy_listen_port:
            # The harness does not start that app: the app's DSN must name the emulator's port before the run.
            raise ValueError("--proxy-idle-cut with --target-url: give --proxy-listen-port P and point your app's DSN"
                             " at 127.0.0.1:P")
        return self

    # Your own app and database: load `target_url`, watch `dsn` read-only
    target_url: str | None = None
    pools_per_worker: int = Field(1, ge=1, le=64)
    pool_sizes: tuple[Annotated[int, Field(ge=1, le=1000)], ...] = ()
    metrics_url: str | None = Field(None, description="your app's Prometheus endpoint of pool stats, scraped if given")
    pools: tuple[str, ...] = Field((), description="each pool of a worker, KIND:max=N[,min=N,max_idle=S,max_lifetime=S]")
    watch_filter: dict[str, str] = Field(default_factory=dict)
    locustfile: Path | None = None

    # Distributed load: Locust's own master and workers (loadtests/run/locust_options.py)
    locust_workers: int = Field(0, ge=0, le=64)
    locust_remote_workers: int = Field(0, ge=0, le=1000)
    locust_master_bind: str | None = None

    @field_validator("target_url")
    @classmethod
    def _valid_target_url(cls, url: str | None) -> str | None:
        return None if url is None else check_target_url(url)

    @field_validator("metrics_url")
    @classmethod
    def _valid_metrics_url(cls, url: str | None) -> str | None:
        return None if url is None else check_target_url(url)

    @field_validator("pools")
    @classmethod
    def _valid_pools(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(parse_pool(spec)) for spec in specs)

    @field_validator("watch_filter")
    @classmethod
    def _valid_watch_filter(cls, specs: dict[str, str]) -> dict[str, str]:
        parse_watch_filter(specs)
        return specs

    @field_validator("locustfile")
    @classmethod
    def _valid_locustfile(cls, path: Path | None) -> Path | None:
        return None if path is None else check_locustfile(path)

    @field_validator("locust_master_bind")
    @classmethod
    def _valid_master_bind(cls, text: str | None) -> str | None:
        return None if text is None else str(parse_bind(text))

    @model_validator(mode="after")
    def _own_app_and_load(self) -> "RunConfig":
        if self.target_url is not None and self.dsn is None:
            raise ValueError("--target-url: needs --dsn, the app's database, which the harness watches read-only")
        if self.target_url is not None and any(f.kind in WORKER_FAULTS for f in self.fault_plan()):
            raise ValueError("--fault worker-kill and worker-term: stop a worker of the sample app, not of a --target-url app")
        if self.target_url is None and (self.pool_sizes or self.pools_per_worker != 1):
            raise ValueError("--pool-sizes and --pools-per-worker describe an app of your own: use with --target-url")
        if self.metrics_url is not None and self.target_url is None:
            raise ValueError("--metrics-url: the sample app's /metrics is scraped already; use with --target-url")
        if self.pools and self.target_url is None:
            raise ValueError("--pool describes a pool of an app of your own: use with --target-url")
        if self.pools and (self.pool_sizes or self.pools_per_worker != 1 or self.engines):
            raise ValueError("give --pool for each pool, or --pool-sizes / --pools-per-worker, not both")
        if self.pool_sizes and self.pools_per_worker not in (1, len(self.pool_sizes)):
            raise ValueError("give --pool-sizes or --pools-per-worker, not both")
        if self.pool_sizes and self.engines:
            raise ValueError("give --pool-sizes or --pool-size/--max-overflow, not both")
        if self.locust_remote_workers and self.locust_master_bind is None:
            raise ValueError("--locust-remote-workers: needs --locust-master-bind HOST:PORT for them to join")
        if self.locust_master_bind is not None and not self.distributed:
            raise ValueError("--locust-master-bind: needs --locust-workers or --locust-remote-workers to join it")
        return self

    @field_validator("thresholds")
    @classmethod
    def _valid_thresholds(cls, texts: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(parse_threshold(text).expression for text in texts)

    @field_validator("faults")
    @classmethod
    def _valid_faults(cls, specs: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(str(parse_fault(spec)) for spec in specs)

    @model_validator(mode="after")
    def _consistent(self) -> "RunConfig":
        if self.min_size > self.max_size:
            raise ValueError(f"--min-size ({self.min_size}) must not exceed --max-size ({self.max_size})")
        reserved = self.superuser_reserved_connections + self.reserved_connections
        needed = reserved + COLLECTOR_CLIENTS + 1  # the harness's own client and one app connection
        if self.dsn is None and self.max_connections < needed:
            raise ValueError(
                f"--max-connections ({self.max_connections}) is below what the harness itself needs:"
                f" {reserved} reserved + {COLLECTOR_CLIENTS} collector + 1 app connection = {needed}"
            )
        self._check_faults()
        if not any(stage.phase == BURST for stage in self.stages()):
            raise ValueError(
                f"--duration {self.duration:g}: no burst runs (the first starts after --quiet-seconds"
                f" {self.quiet_seconds:g}); give a longer --duration or a shorter --quiet-seconds"
            )
        return self

    def _check_faults(self) -> None:
        for fault in self.fault_plan():
            if fault.at_s >= self.duration:
                raise ValueError(f"--fault {fault}: must happen before the end of --duration ({self.duration:g} s)")
            if fault.kind == DB_RESTART and not self.embedded:
                raise ValueError(f"--fault {fault}: restarts only the embedded server, never a --dsn server")
            if fault.kind in DATABASE_FAULTS and not self.embedded and not self.allow_faults:
                raise ValueError(f"--fault {fault}: refused on a --dsn server without --allow-faults")


_OPTION_NAMES = {"faults": "--fault", "server_settings": "--server-setting", "thresholds": "--threshold", "pools": "--pool"}


def _option(loc: tuple[Any, ...]) -> str:
    if not loc:
        return "configuration"
    return _OPTION_NAMES.get(str(loc[0]), "--" + str(loc[0]).replace("_", "-"))


def describe_error(error: ValidationError) -> str:
    """The first problem of a validation error as one line naming the option."""
    first = error.errors()[0]
    if first["type"] == "extra_forbidden":
        return f"unknown setting {first['loc'][0]!r}"
    message = first["msg"].removeprefix("Value error, ")
    if first["loc"] and first["loc"][0] == "thresholds":  # the message quotes the threshold already
        return f"--threshold: {message}"
    if first["loc"]:
        given = first.get("input")
        return redact_dsn(f"{_option(first['loc'])}: {message} (got {given!r})")
    return message
