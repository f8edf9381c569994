"""The run's main loop while Locust drives the load: progress, faults when due, and the stop flag."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from loadtests.budget import ServerLimits
from loadtests.config import RunConfig
from loadtests.errors import Interrupted
from loadtests.faults import DB_RESTART, DB_TERMINATE_IDLE, WORKER_KILL, WORKER_TERM, Fault
from loadtests.faults import event as fault_event
from loadtests.faults import record
from loadtests.live.terminal import Progress
from loadtests.run.app_hosts import APP_NAME
from loadtests.run.fault_injection import kill_one_worker, terminate_idle
from loadtests.run.embedded_server import ServerInfo
from loadtests.run.locust_stack import WEB_UI_LINGER_S, load_deadline_s
from loadtests.run.manifest import Manifest
from loadtests.run.processes import ManagedProcess
from loadtests.run.signals import Stop
from loadtests.run_folder import CONNECTIONS_CSV, app_prefix
from loadtests.sources.collector import collector_start

_TICK_S = 0.5  # how often the loop looks at Locust, the clock and the stop flag


@dataclass(frozen=True)
class FaultTargets:
    """What `--fault` acts on."""

    server_dsn: str
    server: ServerInfo | None = None  # the embedded server, for db-restart
    app_server_pid: int | None = None  # the first host's gunicorn master or uvicorn supervisor, for worker faults
    manifest: Manifest | None = None  # puts a restarted server's new postmaster on record


def watch_load(
    locust: ManagedProcess,
    *,
    config: RunConfig,
    limits: ServerLimits,
    run_dir: Path,
    stop: Stop,
    echo: Callable[[str], None],
    targets: FaultTargets,
) -> None:
    """Return when Locust has exited by itself; Interrupted on a stop request, RuntimeError past the deadline."""
    progress = Progress(run_dir, config=config, limits=limits, echo=echo,
                        closes_after_s=WEB_UI_LINGER_S if config.web_ui else 0.0)
    load_start, load_start_epoch = time.monotonic(), time.time()
    pending = config.fault_plan()
    deadline = load_start + load_deadline_s(config)
    try:
        while locust.wait(_TICK_S) is None:
            if stop():
                raise Interrupted("interrupted during the load")
            if time.monotonic() > deadline:
                raise RuntimeError("locust did not finish within its duration + 60 s")
            while pending and time.monotonic() - load_start >= pending[0].at_s:
                fault = pending.pop(0)
                detail = _inject(fault, targets)
                elapsed = time.time() - _collector_epoch(run_dir)
                record(run_dir, fault_event(fault, elapsed_s=elapsed, load_start_epoch=load_start_epoch, detail=detail))
                echo(f"fault {fault}: {detail}")
            progress.tick()
    finally:
        progress.close()


def _inject(fault: Fault, targets: FaultTargets) -> str:
    """Do the fault; return what was done, for faults.jsonl and the terminal."""
    if fault.kind in (WORKER_KILL, WORKER_TERM):
        assert targets.app_server_pid is not None  # config refuses worker faults without the sample app
        signum = signal.SIGKILL if fault.kind == WORKER_KILL else signal.SIGTERM
        return f"{signal.Signals(signum).name} worker {kill_one_worker(targets.app_server_pid, signum=signum)}"
    if fault.kind == DB_RESTART:
        assert targets.server is not None and targets.server.process is not None  # config refuses it on a --dsn server
        seconds = targets.server.restart()
        if targets.manifest is not None:
            # A new pid: a killed runner's successor must find this postmaster, not only the first one.
            targets.manifest.track("postgres", targets.server.process)
        return f"server restarted in {seconds:.2f} s"
    if fault.kind == DB_TERMINATE_IDLE:
        return f"terminated {terminate_idle(targets.server_dsn, app_prefix=app_prefix(APP_NAME))} idle backends"
    raise ValueError(f"unknown fault {fault}")


def _collector_epoch(run_dir: Path) -> float:
    """When the collector started (epoch seconds): its `elapsed_s` is the run's common time axis."""
    return collector_start(run_dir / CONNECTIONS_CSV) or time.time()
