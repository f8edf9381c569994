"""Every worker's pool, as psycopg_pool sees it: /metrics, pool_stats.csv and summary.json's `pool`."""

import asyncio
import csv
import os
import subprocess
import sys
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg_pool import AsyncConnectionPool

from app.metrics import PoolTelemetry, forget_dead_workers
from conftest import leftover_processes, poolcheck
from own_counts import app_sessions, log_peak, log_sessions
from loadtests.analysis.sections import pool_figures
from loadtests.run_folder import POOL_STATS_CSV
from loadtests.sources.pool_stats import COLUMNS, parse_metrics, read_pool_stats, stat_rows

EXPOSITION = """\
# HELP poolcheck_pool_requests_waiting psycopg_pool get_stats() requests_waiting
# TYPE poolcheck_pool_requests_waiting gauge
poolcheck_pool_requests_waiting{pid="101"} 3.0
poolcheck_pool_requests_waiting{pid="102"} 0.0
# HELP poolcheck_pool_requests_wait_seconds psycopg_pool get_stats() requests_wait_ms, in seconds, since the pool opened
# TYPE poolcheck_pool_requests_wait_seconds counter
poolcheck_pool_requests_wait_seconds_total{pid="101"} 1.25
poolcheck_pool_requests_wait_seconds_total{pid="99"} 7.5
# HELP poolcheck_event_loop_lag_seconds largest event-loop lag
# TYPE poolcheck_event_loop_lag_seconds gauge
poolcheck_event_loop_lag_seconds{pid="101"} 0.0125
poolcheck_event_loop_lag_seconds{pid="102"} 0.002
# HELP python_info other metrics are ignored
# TYPE python_info gauge
python_info{version="3.11"} 1.0
"""


def test_metrics_page_to_rows_per_worker(tmp_path):
    by_pid = parse_metrics(EXPOSITION)
    # pid 99 left its counter behind and no gauge: a dead worker, not a row
    assert by_pid == {
        101: {"requests_waiting": 3.0, "requests_wait_ms": 1250.0, "event_loop_lag_ms": 12.5},
        102: {"requests_waiting": 0.0, "event_loop_lag_ms": 2.0},
    }
    path = tmp_path / POOL_STATS_CSV
    lines = [",".join(COLUMNS)]
    for t in (1.0, 2.0):
        lines += [",".join(map(str, r)) for r in stat_rows(by_pid, timestamp=1_700_000_000 + t, elapsed_s=t, host=1)]
    path.write_text("\n".join(lines) + "\n" + lines[1][:20])  # and a torn last line
    rows = read_pool_stats(path)
    assert [(r["pid"], r["requests_waiting"], r["requests_num"]) for r in rows] == [(101, 3, 0), (102, 0, 0)] * 2



def test_a_dead_workers_gauges_are_forgotten_and_its_counters_kept(tmp_path):
    # A real process that has exited (and been reaped) stands for a SIGKILLed worker; this process is a live one.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = os.getpid()
    names = [f"gauge_liveall_{dead.pid}.db", f"gauge_livesum_{dead.pid}.db", f"counter_{dead.pid}.db",
             f"gauge_liveall_{live}.db", f"gauge_all_{dead.pid}.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert forget_dead_workers(str(tmp_path)) == [dead.pid]
    # The live gauges of the dead pid are gone; its counter and a non-live gauge stay, as prometheus_client keeps them.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"counter_{dead.pid}.db", f"gauge_liveall_{live}.db", f"gauge_all_{dead.pid}.db"]
    )
    assert forget_dead_workers(str(tmp_path)) == []

def test_event_loop_lag_is_how_late_the_timer_fires():
    async def blocked_loop() -> str:
        # A real pool, never opened: get_stats() answers without a server.
        pool = AsyncConnectionPool("host=127.0.0.1 port=1", min_size=0, max_size=3, open=False)
        telemetry = PoolTelemetry(pool, interval=0.05, lag_window=1.0)
        telemetry.start()
        await asyncio.sleep(0.12)
        time.sleep(0.3)  # a blocking call on the event loop: the stall to measure
        await asyncio.sleep(0.12)
        await telemetry.stop()
        return telemetry.exposition().decode()

    values = {s.name: s.value for f in text_string_to_metric_families(asyncio.run(blocked_loop())) for s in f.samples}
    assert 0.25 <= values["poolcheck_event_loop_lag_seconds"] < 1.0
    assert values["poolcheck_pool_max_size"] == 3 and values["poolcheck_pool_requests_waiting"] == 0


def _row(pid: int, t: str, **values: float) -> dict:
    # Every column a real pool_stats.csv row has (as read_pool_stats returns it), zero unless given.
    base = {name: 0.0 for name in COLUMNS if name not in ("timestamp", "elapsed_s", "host", "pid")}
    return {"timestamp": t, "host": 1, "pid": pid, **base, **values}


def test_pool_totals_take_each_workers_last_counters_and_the_maxima():
    stats = [
        _row(1, "a", requests_num=10, requests_wait_ms=100, requests_waiting=4, event_loop_lag_ms=3.0),
        _row(2, "a", requests_num=5, requests_errors=1, requests_waiting=1),
        _row(1, "b", requests_num=30, requests_wait_ms=400, requests_waiting=0, connections_lost=2),
        _row(2, "b", requests_num=9, requests_errors=2, event_loop_lag_ms=40.5),
    ]
    pool = pool_figures(stats)
    assert pool["workers"] == 2 and pool["scrapes"] == 2
    assert pool["requests_total"] == 39 and pool["wait_ms_total"] == 400
    assert pool["pool_timeouts"] == 2 and pool["connections_lost"] == 2
    assert pool["requests_waiting_max"] == 4 and pool["event_loop_lag_max_ms"] == 40.5
    assert pool["per_worker"]["1"]["requests_waiting_max"] == 4
    assert pool_figures([]) == {}


def test_short_run_has_pool_exact_and_lifecycle_figures(short_run):
    summary = short_run.json("summary.json")
    workers = summary["connections"]["workers_seen"]
    stats = read_pool_stats(short_run.run_dir / POOL_STATS_CSV)
    # One series per worker pid, from one scrape of one worker (prometheus_client multiprocess mode).
    assert sorted({r["pid"] for r in stats}) == workers
    assert summary["pool"]["workers"] == len(workers) == 3
    exact = summary["exact"]
    assert exact["available"] and exact["peak"] >= exact["sampled_peak"] > 0
    # Both figures against the test's own reading of the server's log and of the samples.
    assert exact["peak"] == log_peak(app_sessions(log_sessions(short_run.run_dir)))
    with open(short_run.run_dir / "connections.csv", newline="") as f:
        assert exact["sampled_peak"] == max(int(row["total"]) for row in csv.DictReader(f))
    assert (short_run.run_dir / "connections_exact.csv").exists()
    assert set(summary["lifecycle"]) == {"ages", "drain", "orphans"}
    assert summary["lifecycle"]["orphans"] == {"checked": True, "connections_max": 0, "workers": []}


def _pool_run(results_dir, *args):
    return poolcheck("run", "--scrape-interval", "0.5", "--baseline-users", "0", "--cycles", "1", *args, results_dir=results_dir)


@pytest.mark.slow
def test_a_small_pool_queues_in_every_worker_then_drains_by_the_rule(results_dir):
    # Two app instances of one worker each: Locust spreads users over instances evenly,
    # whereas one instance's workers split keep-alive connections unevenly.
    run = _pool_run(
        results_dir, "--hosts", "2", "--workers", "1", "--max-size", "2", "--min-size", "0", "--max-idle", "2",
        "--duration", "20", "--quiet-seconds", "3", "--burst-seconds", "5", "--burst-users", "16", "--hold-ms", "200",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    stats = read_pool_stats(run.run_dir / POOL_STATS_CSV)
    workers = summary["connections"]["workers_seen"]
    assert len(workers) == 2
    for pid in workers:
        mine = [r for r in stats if r["pid"] == pid]
        assert max(r["requests_waiting"] for r in mine) > 0, pid
        assert mine[-1]["requests_wait_ms"] > 0 and mine[-1]["requests_queued"] > 0, pid
    pool = summary["pool"]
    assert pool["requests_waiting_max"] > 0 and pool["wait_ms_total"] > 0 and pool["pool_timeouts"] == 0
    (burst,) = summary["lifecycle"]["drain"]["bursts"]
    assert burst["peak_per_worker"] == 2 and burst["target"] == 0
    assert burst["drained"] and burst["within_prediction"], burst
    assert burst["drain_s"] <= burst["load_tail_s"] + burst["predicted_max_s"]
    assert "drain after burst 1: back at 0 connections" in run.stdout
    assert leftover_processes(run) == []


@pytest.mark.slow
def test_a_pool_large_enough_never_queues(results_dir):
    run = _pool_run(
        results_dir, "--workers", "3", "--min-size", "6", "--max-size", "6",
        "--duration", "10", "--quiet-seconds", "3", "--burst-seconds", "4", "--burst-users", "4", "--hold-ms", "50",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    stats = read_pool_stats(run.run_dir / POOL_STATS_CSV)
    assert sorted({r["pid"] for r in stats}) == summary["connections"]["workers_seen"]
    assert summary["requests"]["total"] > 50
    assert all(r["requests_waiting"] == 0 and r["requests_queued"] == 0 and r["requests_wait_ms"] == 0 for r in stats)
    assert summary["pool"]["requests_total"] > 50
    assert summary["pool"]["requests_waiting_max"] == 0 and summary["pool"]["wait_ms_total"] == 0
