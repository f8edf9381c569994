"""The samplers: `python -m loadtests.sources.<name>` processes writing into the run folder.

The collector samples pg_stat_activity into connections.csv; the scraper reads
every worker's /metrics into pool_stats.csv. Both are returned unstarted:
entering one starts it and waits for its first row.
"""

from __future__ import annotations

import sys
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from loadtests.config import RunConfig
from loadtests.run.processes import ManagedProcess, child_env
from loadtests.run.signals import Stop
from loadtests.run_folder import CONNECTIONS_CSV, PGBOUNCER, PGBOUNCER_POOLS_CSV, POOL_STATS_CSV, PROXY_EVENTS_JSONL
from loadtests.sources.csv_tail import has_data_row


def collector(config: RunConfig, *, server_dsn: str, run_dir: Path, stop: Stop) -> ManagedProcess:
    """pg_stat_activity every `sample_interval`; its DSN goes through the environment, never argv."""
    csv_path = run_dir / CONNECTIONS_CSV
    return _sampler(
        "collector",
        config,
        run_dir=run_dir,
        stop=stop,
        interval=config.sample_interval,
        args=[arg for spec in config.watch.as_specs() for arg in ("--watch", spec)] + _app_port(config)
        + (["--pooler", PGBOUNCER] if config.pgbouncer else []) + _relay(config, run_dir),
        ready=lambda: has_data_row(csv_path),
        env=child_env(POOLCHECK_DSN=server_dsn),
    )


def _relay(config: RunConfig, run_dir: Path) -> list[str]:
    """An app of your own behind the cloud-proxy emulator: the server sees the relay, the relay's events the app.

    The sample app names its workers in application_name and needs none of this."""
    if config.proxy_idle_cut is None or config.target_url is None:
        return []
    return ["--relay-port", str(config.proxy_listen_port), "--relay-events", str(run_dir / PROXY_EVENTS_JSONL)]


def _app_port(config: RunConfig) -> list[str]:
    """`--app-port` for an app of your own served on this machine: who listens there is a worker."""
    if config.target_url is None:
        return []
    parts = urllib.parse.urlsplit(config.target_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return []
    return ["--app-port", str(parts.port or (443 if parts.scheme == "https" else 80))]


def scraper(config: RunConfig, *, app_urls: list[str], app_prefix: str, run_dir: Path, stop: Stop) -> ManagedProcess:
    """Every worker's pool stats from /metrics into pool_stats.csv, and worker liveness into workers.csv."""
    return _sampler(
        "scraper",
        config,
        run_dir=run_dir,
        stop=stop,
        interval=config.scrape_interval,
        args=["--app-prefix", app_prefix, *(arg for url in app_urls for arg in ("--url", url))],
        ready=(run_dir / POOL_STATS_CSV).exists,
        env=child_env(),
    )


def pgbouncer_pools(config: RunConfig, *, admin_dsn: str, run_dir: Path, stop: Stop) -> ManagedProcess:
    """PgBouncer's SHOW POOLS every `sample_interval`; the admin DSN goes through the environment, never argv."""
    # Ready once connected (the header is written): the app's pool has no row until its first client.
    return _sampler(
        "pgbouncer_pools",
        config,
        run_dir=run_dir,
        stop=stop,
        interval=config.sample_interval,
        args=[],
        ready=(run_dir / PGBOUNCER_POOLS_CSV).exists,
        env=child_env(POOLCHECK_PGBOUNCER_DSN=admin_dsn),
    )


def _sampler(
    name: str,
    config: RunConfig,
    *,
    run_dir: Path,
    stop: Stop,
    interval: float,
    args: list[str],
    ready: Callable[[], bool],
    env: dict[str, str],
) -> ManagedProcess:
    return ManagedProcess(
        name,
        [
            sys.executable, "-m", f"loadtests.sources.{name}",
            "--out", str(run_dir),
            "--interval", str(interval),
            # A sampler stops by itself after this, whatever happens to the runner.
            "--max-seconds", str(config.duration + config.ready_timeout + 120),
            *args,
        ],
        log_path=run_dir / f"{name}.log",
        env=env,
        ready=ready,
        ready_timeout=15,
        stop_timeout=3,
        cancelled=stop,
        forced=stop.forced,
    )
