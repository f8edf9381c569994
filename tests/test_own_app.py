"""`--target-url` + `--dsn`: an app the harness did not start, its database watched read-only.

The app (tests/own_app) is a Starlette app with two pools per worker and no
application_name, under gunicorn with 2 workers, on a server the test starts.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
import pytest

from conftest import poolcheck
from loadtests.run.processes import ManagedProcess
from loadtests.run.embedded_server import ServerInfo, embedded_server, free_port

pytestmark = pytest.mark.slow

OWN_APP = Path(__file__).resolve().parent / "own_app"
WORKERS, POOL_SIZES = 2, (2, 3)


@dataclass
class OwnApp:
    url: str
    server: ServerInfo
    process: ManagedProcess

    def worker_connections(self) -> dict[int, int]:
        """Ground truth from the kernel: each worker's TCP connections to the server."""
        return {
            worker.pid: sum(1 for c in worker.net_connections("inet") if c.raddr and c.raddr.port == self.server.port)
            for worker in psutil.Process(self.process.pid).children()
        }

    def backend_pids(self) -> set[int]:
        with psycopg.connect(self.server.superuser_dsn, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE usename = 'app'").fetchall()
        return {pid for (pid,) in rows}


def _pools_open(app: OwnApp) -> bool:
    held = app.worker_connections()
    return len(held) == WORKERS and all(n == sum(POOL_SIZES) for n in held.values())


@pytest.fixture
def own_app(tmp_path: Path):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 30}, ready_timeout=60) as server:
        port = free_port()
        app = OwnApp(url=f"http://127.0.0.1:{port}", server=server, process=None)  # type: ignore[arg-type]
        app.process = ManagedProcess(
            "own app",
            [
                sys.executable, "-m", "gunicorn",
                "--worker-class", "uvicorn_worker.UvicornWorker",
                "--workers", str(WORKERS),
                "--bind", f"127.0.0.1:{port}",
                "--chdir", str(OWN_APP),
                "app:app",
            ],
            log_path=tmp_path / "own-app.log",
            env={
                **os.environ,
                "DATABASE_URL": server.app_dsn,
                "LOOKUP_POOL_SIZE": str(POOL_SIZES[0]),
                "REPORT_POOL_SIZE": str(POOL_SIZES[1]),
            },
            ready=lambda: _pools_open(app),
            ready_timeout=60,
            stop_leader_only=True,
        )
        with app.process:
            yield app


def test_own_app_is_counted_per_worker_and_left_untouched(own_app, results_dir):
    workers_before = own_app.worker_connections()
    backends_before = own_app.backend_pids()
    run = poolcheck(
        "run",
        "--target-url", own_app.url,
        "--dsn", own_app.server.superuser_dsn,
        "--workers", str(WORKERS),
        "--pool-sizes", ",".join(map(str, POOL_SIZES)),
        "--locustfile", str(OWN_APP / "locustfile.py"),
        "--watch-filter", "user=app",
        "--duration", "12", "--quiet-seconds", "4", "--burst-seconds", "4", "--burst-users", "12",
        results_dir=results_dir,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    per_worker = sum(POOL_SIZES)

    # Attributed by the owning process (no application_name), each worker with both pools.
    assert summary["connections"]["peak_by_worker"] == {f"pid:{pid}": per_worker for pid in workers_before}
    assert summary["connections"]["workers_seen"] == sorted(workers_before)
    assert summary["budget"]["per_worker"] == per_worker
    assert summary["budget"]["pools_total"] == summary["peak_connections"] == WORKERS * per_worker
    assert summary["requests"]["total"] > 50 and summary["requests"]["failures"] == 0

    # Read-only: the same workers and backends as before, no table created, no setting changed.
    assert own_app.worker_connections() == workers_before
    assert own_app.backend_pids() == backends_before
    with psycopg.connect(own_app.server.app_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
    assert run.json("manifest.json").get("app_urls") == [own_app.url]
    assert not any(path.name.startswith("gunicorn") for path in run.run_dir.iterdir())

    for path in run.run_dir.rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(secret in text for secret in own_app.server.passwords), path
    assert not any(secret in run.stdout + run.stderr for secret in own_app.server.passwords)
    _harness_stopped(run.json("manifest.json"))


def _harness_stopped(manifest: dict) -> None:
    for role, pids in manifest["pids"].items():
        for pid in pids:
            try:
                assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, f"{role} {pid} still runs"
            except psutil.NoSuchProcess:
                pass
