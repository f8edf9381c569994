"""A SQLAlchemy engine per worker, for real: its overflow against the server's own count, and a short run."""

from __future__ import annotations

import json
import os
import sys

import time
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import METRIC_NAMES
from conftest import leftover_processes, poolcheck
from loadtests.run.embedded_server import embedded_server, free_port
from loadtests.run.processes import ManagedProcess
from loadtests.run_folder import POOL_STATS_CSV
from loadtests.sources.pool_stats import read_pool_stats

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).resolve().parent.parent / "app"
POOL_SIZE, MAX_OVERFLOW = 1, 3
BURST = POOL_SIZE + MAX_OVERFLOW


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        body = response.read().decode()
    return json.loads(body) if body.startswith("{") else {"text": body}


def _answers(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return _get(f"{url}/health")["status"] == "ok"
        except OSError:
            return False

    return check


def _wait_for(what: str, condition: Callable[[], bool], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def _backends(dsn: str, application_name: str) -> set[int]:
    """The server's own count: backend pids of one worker's application_name."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (application_name,))
        return {pid for (pid,) in rows}


def _exported_overflow(url: str) -> float:
    text = _get(f"{url}/metrics")["text"]
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples if s.name == METRIC_NAMES["overflow"]]
    return samples[0].value


def _burst(url: str, *, ms: int) -> tuple[ThreadPoolExecutor, list]:
    pool = ThreadPoolExecutor(BURST)
    return pool, [pool.submit(_get, f"{url}/items/hold?ms={ms}") for _ in range(BURST)]


def test_overflow_opens_beyond_pool_size_and_closes_on_return(tmp_path):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20}) as server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": server.app_dsn, "POOL_KIND": "sqlalchemy",
               "POOL_MAX_SIZE": str(BURST), "POOL_MAX_OVERFLOW": str(MAX_OVERFLOW), "POOL_TIMEOUT": "10"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one worker: /metrics is its own
        argv = [sys.executable, "-m", "gunicorn", "-c", str(APP_DIR / "gunicorn.conf.py"), "--workers", "1",
                "--bind", f"127.0.0.1:{port}", "app.main:create_app()"]
        with ManagedProcess("app", argv, log_path=tmp_path / "app.log", env=env, ready=_answers(url), stop_leader_only=True):
            pid = _get(f"{url}/health")["pid"]
            name = f"poolcheck-app:{pid}"
            stats = lambda: _get(f"{url}/pool/stats")["stats"]  # noqa: E731
            assert len(_backends(server.app_dsn, name)) == POOL_SIZE and stats()["overflow"] == 0

            bursts = []
            for _ in range(2):
                executor, held = _burst(url, ms=2500)
                _wait_for("every request of the burst holding a connection", lambda: len(_backends(server.app_dsn, name)) == BURST)
                seen = _backends(server.app_dsn, name)
                assert stats()["overflow"] == len(seen) - POOL_SIZE == MAX_OVERFLOW
                _wait_for("/metrics showing the overflow", lambda: _exported_overflow(url) == len(seen) - POOL_SIZE)
                assert [f.result()["held_ms"] for f in held] == [2500] * BURST
                executor.shutdown()
                # Returned overflow connections are closed at once, not after an idle time.
                _wait_for("the overflow closed", lambda: len(_backends(server.app_dsn, name)) == POOL_SIZE, within=2.0)
                assert stats()["overflow"] == 0
                bursts.append(seen)

            # Each burst opened its overflow anew: new backends, counted by the engine too.
            kept = bursts[0] & bursts[1]
            assert len(kept) == POOL_SIZE and len(bursts[1] - bursts[0]) == MAX_OVERFLOW
            assert stats()["connections_num"] == POOL_SIZE + 2 * MAX_OVERFLOW


def test_a_short_run_of_sqlalchemy_engines_stays_within_pool_size_plus_overflow(results_dir):
    run = poolcheck(
        "run", "--pool-kind", "sqlalchemy", "--pool-size", "2", "--max-overflow", "2", "--workers", "2",
        "--duration", "15", "--quiet-seconds", "4", "--burst-seconds", "5", "--burst-users", "24", "--cycles", "1",
        "--scrape-interval", "0.5", results_dir=results_dir,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    assert summary["budget"]["max_overflow"] == 2 and summary["budget"]["pools_total"] == 2 * (2 + 2)
    assert summary["exact"]["peak"] <= 8 and summary["peak_connections"] <= 8
    pool = summary["pool"]
    workers = summary["connections"]["workers_seen"]
    assert pool["available"] and pool["workers"] == len(workers) == 2
    assert pool["requests_total"] > 0 and pool["overflow_max"] <= 2
    stats = read_pool_stats(run.run_dir / POOL_STATS_CSV)
    assert {r["pid"] for r in stats} == set(workers)
    assert max(r["pool_max"] for r in stats) == 4 and max(r["pool_size"] for r in stats) <= 4
    exact = summary["exact"]
    assert all(peak <= 2 + 2 for peak in exact["peak_by_worker"].values()), exact["peak_by_worker"]
    # The engines' own count of connections they opened, against the server log's sessions of the app.
    assert pool["connections_opened"] == exact["sessions"] > 0
    assert "pool_size 2 + max_overflow 2" in run.stdout
    assert leftover_processes(run) == []
