"""The app under load: the sample app's hosts (gunicorn or uvicorn --workers), or an app of your own the harness only waits for."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.metrics import MULTIPROC_ENV

from loadtests.config import RunConfig
from loadtests.run.embedded_server import free_port
from loadtests.run.own_app import answers_http
from loadtests.run.processes import ManagedProcess, child_env, wait_until
from loadtests.run.signals import Stop
from loadtests.run_folder import APP_NAME, app_log_name

_APP_DIR = Path(__file__).resolve().parents[2] / "app"


@dataclass(frozen=True)
class AppHost:
    """One host of the sample app (a gunicorn master or uvicorn's supervisor), ready: every worker has answered /health."""

    number: int
    url: str
    process: ManagedProcess


@contextmanager
def app_hosts(
    config: RunConfig, *, app_dsn: str, run_dir: Path, stop: Stop, on_start: Callable[[AppHost], None]
) -> Iterator[list[AppHost]]:
    """`config.hosts` hosts (`config.server`) started one after the other, stopped in reverse on exit.

    `on_start` hears of each host as soon as it is ready, before the next one
    starts, so that its pid is on record should the runner be killed meanwhile.
    """
    env = child_env(**config.app_environment(app_dsn), APP_NAME=APP_NAME)
    hosts: list[AppHost] = []
    with ExitStack() as stack:
        for number in range(1, config.hosts + 1):
            port = config.app_port + number - 1 if config.app_port else free_port()
            url = f"http://127.0.0.1:{port}"
            # A fresh PROMETHEUS_MULTIPROC_DIR per host: stale files would show workers of another run.
            metrics_dir = tempfile.mkdtemp(prefix="poolcheck-metrics-")
            stack.callback(shutil.rmtree, metrics_dir, ignore_errors=True)
            process = ManagedProcess(
                f"app host {number}",
                _server_argv(config, port),
                log_path=run_dir / app_log_name(config.server, number),
                env={**env, MULTIPROC_ENV: metrics_dir},
                ready=every_worker_healthy(url, config.workers),
                ready_timeout=config.ready_timeout,
                # Both supervisors stop their workers on SIGTERM (each worker's lifespan closes its pool).
                stop_leader_only=True,
                stop_timeout=8,
                cancelled=stop,
                forced=stop.forced,
            )
            stack.enter_context(process)
            hosts.append(AppHost(number, url, process))
            on_start(hosts[-1])
        yield hosts


def _server_argv(config: RunConfig, port: int) -> list[str]:
    """The command of one host: a gunicorn master with uvicorn workers, or uvicorn's own --workers supervisor."""
    if config.server == "uvicorn":
        # uvicorn spawns each worker afresh and imports the factory there: no master holds the app (no --preload).
        argv = [
            sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app",
            "--workers", str(config.workers), "--host", "127.0.0.1", "--port", str(port),
            "--no-access-log", "--timeout-graceful-shutdown", "10",
        ]
        return argv + (["--limit-max-requests", str(config.max_requests)] if config.max_requests else [])
    return [
        sys.executable, "-m", "gunicorn",
        "-c", str(_APP_DIR / "gunicorn.conf.py"),
        "--workers", str(config.workers),
        "--bind", f"127.0.0.1:{port}",
        "app.main:create_app()",
    ]


def wait_for_target(url: str, *, config: RunConfig, stop: Stop) -> float:
    """An app the harness did not start: the seconds until it answered HTTP. It is never touched otherwise."""
    return wait_until(lambda: answers_http(url), timeout=config.ready_timeout, what=url, cancelled=stop)


def every_worker_healthy(url: str, workers: int) -> Callable[[], bool]:
    """A readiness check: true once `workers` distinct pids have answered /health.

    Each request is a new connection, which the kernel hands to whichever
    worker accepts first; a few rounds reach them all.
    """
    seen: set[int] = set()

    def check() -> bool:
        for _ in range(4 * workers):
            pid = _health_pid(url)
            if pid is not None:
                seen.add(pid)
            if len(seen) >= workers:
                return True
        return False

    return check


def _health_pid(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return int(json.load(response)["pid"]) if response.status == 200 else None
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None
