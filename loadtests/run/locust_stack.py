"""Locust as the harness runs it: one process, or a master and its local workers; headless or with its web UI."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from loadtests.addresses import LOOPBACK, MasterBind
from loadtests.config import RunConfig
from loadtests.run.embedded_server import free_port
from loadtests.run.locust_options import locustfile_argument, master_options, worker_argv
from loadtests.run.processes import ManagedProcess, child_env
from loadtests.run.signals import Stop
from loadtests.run_folder import LOCUST_HISTORY_CSV, LOCUST_PREFIX
from loadtests.sources.csv_tail import has_data_row

WEB_UI_LINGER_S = 30  # the web UI stays up this long after the shape ends, then the run finishes


def master_bind(config: RunConfig) -> MasterBind | None:
    """Where the Locust master listens: as given, else a free loopback port; None without workers."""
    if not config.distributed:
        return None
    return config.master_bind() or MasterBind(LOOPBACK, free_port())


def local_workers(config: RunConfig, *, bind: MasterBind, run_dir: Path, stop: Stop) -> list[ManagedProcess]:
    """Local Locust workers, unstarted; they retry until the master, started after them, is up."""
    locustfile = locustfile_argument(config.locustfile)
    return [
        ManagedProcess(
            f"locust worker {n}",
            worker_argv(bind, locustfile=locustfile, logfile=run_dir / f"locust-worker-{n}.log"),
            log_path=run_dir / f"locust-worker-{n}.out",
            env=child_env(),
            stop_timeout=5,
            forced=stop.forced,
        )
        for n in range(1, config.locust_workers + 1)
    ]


def locust_master(
    config: RunConfig, *, bind: MasterBind | None, app_urls: list[str], run_dir: Path, stop: Stop
) -> ManagedProcess:
    """The Locust process that runs the shape and writes the CSVs; ready when the load has begun."""
    history = run_dir / LOCUST_HISTORY_CSV
    return ManagedProcess(
        "locust",
        _argv(config, bind=bind, app_urls=app_urls, run_dir=run_dir),
        log_path=run_dir / "locust.out",
        env=child_env(),
        stop_signal=signal.SIGTERM,
        stop_timeout=5,
        # Locust writes its first history row when the shape starts: the load's time zero.
        ready=lambda: has_data_row(history),
        # A master starts the shape once its workers have joined (within --ready-timeout).
        ready_timeout=30 + (config.ready_timeout if bind else 0),
        cancelled=stop,
        forced=stop.forced,
    )


def load_deadline_s(config: RunConfig) -> float:
    """Seconds after the load's start by which Locust must have exited by itself."""
    return config.duration + 60 + (WEB_UI_LINGER_S if config.web_ui else 0)


def _argv(config: RunConfig, *, bind: MasterBind | None, app_urls: list[str], run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust",
        "-f", locustfile_argument(config.locustfile),
        *_ui_options(config),
        "--host", app_urls[0],
        "--target-hosts", ",".join(app_urls),
        "--csv", str(run_dir / LOCUST_PREFIX),
        "--csv-full-history",  # its Aggregated rows then hold recent percentiles, not cumulative ones
        "--logfile", str(run_dir / "locust.log"),
        "--total-seconds", str(config.duration),
        "--baseline-users", str(config.baseline_users),
        "--burst-users", str(config.burst_users),
        "--burst-seconds", str(config.burst_seconds),
        "--quiet-seconds", str(config.quiet_seconds),
        "--cycles", str(config.cycles),
        "--hold-ms", str(config.hold_ms),
        *(["--spread-users"] if config.spread_users else []),
        "--stop-timeout", "2",
        *_master_options(config, bind),
    ]


def _master_options(config: RunConfig, bind: MasterBind | None) -> list[str]:
    if bind is None:
        return []
    workers = config.locust_workers + config.locust_remote_workers
    return master_options(bind, expect_workers=workers, max_wait_s=config.ready_timeout)


def _ui_options(config: RunConfig) -> list[str]:
    """Headless, or Locust's web UI starting the shape at once and closing a while after it."""
    if not config.web_ui:
        return ["--headless", "--only-summary"]
    return ["--autostart", "--autoquit", str(WEB_UI_LINGER_S),
            "--web-host", "127.0.0.1", "--web-port", str(config.web_port)]
