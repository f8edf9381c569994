"""An app unlike the sample, measured right: three pools per worker from three libraries, opened at
start-up and fixed in size, no application_name, no /metrics; another client of the same role holding
connections; a worker replaced mid-run. Every figure is held against the test's own count: its own
poll of pg_stat_activity, the kernel's sockets of each process, and its own parse of the server log.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
import pytest

from conftest import poolcheck
from own_counts import OWN_APP, own_app_process, worker_pids as _worker_pids
from loadtests.run.embedded_server import ServerInfo, embedded_server, free_port
from loadtests.run.processes import ManagedProcess, wait_until

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_own_app_exact")]

WORKERS, SIZES = 2, {"sync": 2, "async": 2, "asyncpg": 3}
PER_WORKER = sum(SIZES.values())
OTHER = 3  # connections a separate client of the same role holds all along


@dataclass
class Truth:
    """The test's own poll of pg_stat_activity: the most `app` backends seen at once, per client process."""

    peak: int = 0
    by_process: dict[int, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)


def _held(pid: int, server_port: int) -> int:
    try:
        return sum(1 for c in psutil.Process(pid).net_connections("inet") if c.raddr and c.raddr.port == server_port)
    except psutil.NoSuchProcess:
        return 0


def _poll(truth: Truth, server: ServerInfo, pids: list[int]) -> None:
    """Every 50 ms: count the app role's backends, and attribute each by its client port to a process."""
    with psycopg.connect(server.superuser_dsn, autocommit=True) as conn:
        while not truth.stop.is_set():
            ports = {p for (p,) in conn.execute(
                "SELECT client_port FROM pg_stat_activity WHERE usename = 'app' AND backend_type = 'client backend'")}
            truth.peak = max(truth.peak, len(ports))
            for pid in list(pids):
                try:
                    mine = {c.laddr.port for c in psutil.Process(pid).net_connections("inet") if c.raddr}
                except psutil.NoSuchProcess:
                    continue
                truth.by_process[pid] = max(truth.by_process.get(pid, 0), len(mine & ports))
            time.sleep(0.05)


def _log_peak(log: Path, *, start: float, end: float) -> int:
    """The server log from the server's own start: the most `app` sessions open at once in [start, end]."""
    events = []
    for line in log.read_text().splitlines():
        record = json.loads(line)
        if record.get("user") != "app":
            continue
        at = time.mktime(time.strptime(record["timestamp"][:19], "%Y-%m-%d %H:%M:%S")) - time.timezone
        at += float(record["timestamp"][19:23] or 0)
        if record.get("message", "").startswith("connection authorized"):
            events.append((at, 1))
        elif record.get("message", "").startswith("disconnection"):
            events.append((at, -1))
    count, best = 0, 0
    for at, delta in sorted(events, key=lambda e: (e[0], e[1])):
        count += delta
        if start <= at <= end:
            best = max(best, count)
        elif at < start:
            best = count  # open when the run began
    return best


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("own-app-exact")
    with embedded_server(run_dir=tmp, settings={"max_connections": 40}, ready_timeout=60) as server:
        port = free_port()
        holder: dict[str, ManagedProcess] = {}
        app = own_app_process(
            "mixed_app", name="mixed app", port=port, workers=WORKERS, log_path=tmp / "mixed-app.log",
            env={"DATABASE_URL": server.app_dsn, "SYNC_POOL_SIZE": str(SIZES["sync"]),
                 "ASYNC_POOL_SIZE": str(SIZES["async"]), "ASYNCPG_POOL_SIZE": str(SIZES["asyncpg"])},
            ready=lambda: _pools_open(holder["app"].pid, server.port),
        )
        holder["app"] = app
        with app, _other_client(server) as other:
            first_workers = _worker_pids(app.pid)
            truth = Truth()
            watched = [*first_workers, os.getpid()]
            poller = threading.Thread(target=_poll, args=(truth, server, watched), daemon=True)
            poller.start()
            replaced = threading.Thread(target=_replace_a_worker, args=(app.pid, server.port, tmp, watched), daemon=True)
            replaced.start()
            started = time.time()
            run = poolcheck(
                "run", "--target-url", f"http://127.0.0.1:{port}", "--dsn", server.superuser_dsn,
                "--workers", str(WORKERS),
                "--pool", f"sync:min={SIZES['sync']},max={SIZES['sync']}",
                "--pool", f"async:min={SIZES['async']},max={SIZES['async']}",
                "--pool", f"asyncpg:min={SIZES['asyncpg']},max={SIZES['asyncpg']}",
                "--other-clients", str(OTHER),
                "--locustfile", str(OWN_APP / "locustfile.py"), "--watch-filter", "user=app",
                "--server-log", str(server.data_dir.parent / "log" / "postgresql.json"),  # type: ignore[union-attr]
                "--duration", "16", "--quiet-seconds", "4", "--burst-seconds", "4", "--burst-users", "10",
                results_dir=tmp / "results",
            )
            ended = time.time()
            truth.stop.set()
            poller.join(5)
            replaced.join(30)
            yield run, truth, first_workers, _worker_pids(app.pid), other, (started, ended), server


def _pools_open(master: int, server_port: int) -> bool:
    workers = _worker_pids(master)
    return len(workers) == WORKERS and all(_held(pid, server_port) == PER_WORKER for pid in workers)


class _other_client:
    """A separate process? No: this test's own process, holding OTHER connections of the app's role."""

    def __init__(self, server: ServerInfo) -> None:
        self.server = server

    def __enter__(self) -> list[psycopg.Connection]:
        self.conns = [psycopg.connect(self.server.app_dsn, autocommit=True) for _ in range(OTHER)]
        return self.conns

    def __exit__(self, *exc: object) -> None:
        for conn in self.conns:
            conn.close()


def _replace_a_worker(master: int, server_port: int, tmp: Path, watched: list[int]) -> None:
    """Once the load runs, stop one worker; gunicorn forks a new one, which opens its pools."""
    results = tmp / "results"
    wait_until(lambda: any(json.loads(m.read_text()).get("load_started_at") for m in results.glob("*/manifest.json")),
               timeout=120, what="the load to start")
    before = _worker_pids(master)
    victim = min(before)
    os.kill(victim, signal.SIGTERM)
    wait_until(lambda: len(_worker_pids(master) - before) == 1, timeout=30, what="a new worker")
    (new,) = _worker_pids(master) - before
    watched.append(new)
    wait_until(lambda: _held(new, server_port) == PER_WORKER, timeout=30, what="the new worker's pools")


def test_sampled_exact_and_per_worker_figures_match_the_tests_own_counts(measured):
    run, truth, first, last, _, (start, end), server = measured
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    workers = sorted(first | last)
    assert len(workers) == WORKERS + 1, "one worker was replaced"

    # The test's own counts: app workers hold PER_WORKER each, this process OTHER, at most both at once.
    assert truth.by_process == {**{pid: PER_WORKER for pid in workers}, os.getpid(): OTHER}
    assert summary["connections"]["peak"] == truth.peak == WORKERS * PER_WORKER + OTHER
    assert summary["connections"]["peak_by_worker"] == {f"pid:{pid}": PER_WORKER for pid in workers}
    assert summary["connections"]["workers_seen"] == workers
    assert summary["connections"]["other_clients"] == {f"other:pid:{os.getpid()}": OTHER}

    exact = summary["exact"]
    log_truth = _log_peak(server.data_dir.parent / "log" / "postgresql.json", start=start, end=end)
    assert exact["available"] and exact["peak"] == log_truth == truth.peak
    assert exact["peak_by_worker"] == {f"pid:{pid}": PER_WORKER for pid in workers}
    assert exact["other_clients"] == {f"other:pid:{os.getpid()}": OTHER}
    assert exact["open_at_start"] >= WORKERS * PER_WORKER - PER_WORKER  # the worker never replaced, and this client
    assert exact["sampling_error"] == 0

    # No negative time in the exact timeline: sessions of before the run open it.
    rows = (run.run_dir / "connections_exact.csv").read_text().splitlines()[1:]
    assert rows and all(float(row.split(",")[1]) >= 0 for row in rows)


def test_verdict_budget_and_folder_describe_the_declared_pools(measured):
    run, *_ = measured
    summary, manifest = run.json("summary.json"), run.json("manifest.json")
    assert summary["verdict"] == "pass", summary["reasons"]
    assert not any("leak" in reason for reason in summary["reasons"])
    assert any(f"other clients (not the app's workers) held up to {OTHER}" in r for r in summary["reasons"])
    total = WORKERS * PER_WORKER + 1 + OTHER
    assert summary["budget"]["pools_total"] == WORKERS * PER_WORKER and summary["budget"]["total"] == total
    sentence = summary["budget_sentence"]
    assert f"= {total};" in sentence and "pools of 2+2+3" in sentence
    assert sentence in run.stdout
    assert sentence in (run.run_dir / "report.html").read_text()
    assert run.run_dir.name.endswith("target-w2-p2+2+3")
    assert [p["kind"] for p in manifest["pools"]] == ["sync", "async", "asyncpg"]
    assert "pool_kind" not in manifest["config"] or manifest["config"]["pool_kind"] is None


def test_lifecycle_figures_come_from_the_declared_pools(measured):
    run, *_ = measured
    summary = run.json("summary.json")
    drain = summary["lifecycle"]["drain"]
    production = drain["production"]
    # Fixed pools never shrink: nothing to drain, whatever max_idle is.
    assert production["extra_per_worker"] == 0
    for burst in drain["bursts"]:
        assert burst["target"] == WORKERS * PER_WORKER
    # max_lifetime was never declared: not known, not psycopg's default.
    assert summary["lifecycle"]["ages"]["max_lifetime_s"] is None
    assert "3.3 h" not in run.stdout and "12000" not in run.stdout


def test_no_pool_telemetry_without_a_metrics_url(measured):
    run, *_ = measured
    summary = run.json("summary.json")
    assert summary["pool"]["available"] is False and "--metrics-url" in summary["pool"]["reason"]
    assert not (run.run_dir / "scraper.log").exists()
