"""Connection lifecycle: drain against psycopg's one-per-max_idle rule, ages, orphans."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from loadtests.analysis.lifecycle import (
    age_figures,
    burst_windows,
    drain_after,
    first_at_or_below,
    human_duration,
    orphan_figures,
    production_drain,
    value_at,
)
from loadtests.run_folder import WORKERS_CSV
from loadtests.sources.pool_stats import read_workers
from loadtests.run.processes import ManagedProcess, wait_until
from loadtests.run.embedded_server import embedded_server
from loadtests.sources.server_log import Session
from loadtests.sources.csv_tail import has_data_row

STEPS = [(10.0, 4), (11.0, 8), (20.0, 7), (22.0, 5), (24.0, 2), (30.0, 6)]


def test_step_lookups():
    assert value_at(STEPS, 9.9) == 0 and value_at(STEPS, 11.0) == 8 and value_at(STEPS, 23.0) == 5
    assert first_at_or_below(STEPS, 15.0, 29.0, target=2) == 24.0
    assert first_at_or_below(STEPS, 15.0, 23.0, target=2) is None
    assert first_at_or_below(STEPS, 25.0, 29.0, target=2) == 25.0  # already there


def test_drain_is_held_against_one_connection_per_max_idle():
    per_worker = {"w1": [(10.0, 1), (11.0, 4), (20.0, 3), (22.0, 2), (24.0, 1)], "w2": [(10.0, 1), (11.0, 4)]}
    active = [(10.0, 0), (11.0, 8), (19.0, 0)]
    drain = drain_after(
        (10.0, 18.0, 40.0), total=STEPS, per_worker=per_worker, active=active,
        quiet_users=0, target=2, min_size=1, max_idle=2.0,
    )
    assert drain["peak_per_worker"] == 4 and drain["peak_total"] == 8
    assert drain["drain_s"] == 6.0 and drain["load_tail_s"] == 1.0
    assert drain["predicted_s"] == 6.0 and drain["predicted_max_s"] == 8.0
    assert drain["within_prediction"] is True
    late = drain_after(
        (10.0, 18.0, 40.0), total=STEPS, per_worker=per_worker, active=active,
        quiet_users=0, target=2, min_size=1, max_idle=0.5,
    )
    assert late["within_prediction"] is False  # 3 connections at 0.5 s each cannot take 6 s


def test_production_prediction_for_idle_connections():
    production = production_drain(peak_per_worker=18, min_size=1, max_size=20, prod_max_idle=600)
    assert production["extra_per_worker"] == 17
    assert production["predicted_drain_s"] == 10_200 and production["predicted_drain"] == "2.8 h"
    assert production["worst_case_drain"] == "3.2 h"
    assert human_duration(90) == "2 min" and human_duration(4.5) == "4.5 s"


def test_burst_windows_end_at_the_next_burst():
    shape = [
        {"start_s": 0, "end_s": 5, "phase": "quiet"},
        {"start_s": 5, "end_s": 8, "phase": "burst"},
        {"start_s": 8, "end_s": 13, "phase": "quiet"},
        {"start_s": 13, "end_s": 16, "phase": "burst"},
        {"start_s": 16, "end_s": 30, "phase": "quiet"},
    ]
    assert burst_windows(shape, load_start=100.0) == [(105.0, 108.0, 113.0), (113.0, 116.0, 130.0)]


def test_idle_connections_that_outlive_max_lifetime_are_listed():
    sessions = [
        Session("s1", 11, "app", "poolcheck-app:1", start=0.0, end=50.0),
        Session("s2", 12, "app", "poolcheck-app:1", start=5.0, end=None),  # still open at the log's end
        Session("s3", 13, "app", "poolcheck-app:2", start=10.0, end=20.0),
    ]
    ages = age_figures(sessions=sessions, log_end=100.0, rows=[], max_lifetime=60.0)
    assert ages["exceeded"] and ages["sessions_over_max_lifetime"] == 1
    assert ages["over_max_lifetime"][0] == {
        "application_name": "poolcheck-app:1", "backend_pid": 12, "age_s": 95.0, "over_by_s": 35.0, "open_at_log_end": True,
    }
    sampled = age_figures(sessions=None, log_end=None, rows=[{"oldest_backend_s": 30.0}], max_lifetime=60.0)
    assert sampled["exceeded"] is False and sampled["source"] == "samples"


def test_orphans_are_dead_pids_still_named_by_connections():
    workers = [
        {"timestamp": "t1", "elapsed_s": 1.0, "pid": 7, "alive": 1, "connections": 2},
        {"timestamp": "t2", "elapsed_s": 2.0, "pid": 7, "alive": 0, "connections": 2},
        {"timestamp": "t2", "elapsed_s": 2.0, "pid": 8, "alive": 0, "connections": 1},
        {"timestamp": "t3", "elapsed_s": 3.0, "pid": 7, "alive": 0, "connections": 1},
        {"timestamp": "t3", "elapsed_s": 3.0, "pid": 9, "alive": 1, "connections": 4},
    ]
    orphans = orphan_figures(workers, sessions=None, app_prefix="poolcheck-app:", origin=None)
    assert orphans["checked"] and orphans["connections_max"] == 3
    assert [(w["pid"], w["connections_max"], w["first_seen_s"], w["last_seen_s"]) for w in orphans["workers"]] == [
        (7, 2, 2.0, 3.0), (8, 1, 2.0, 2.0),
    ]


# A worker-like process that connects, leaks its socket into a child, and waits to be killed.
_LEAKER = textwrap.dedent(
    """
    import os, sys, time, psycopg
    conn = psycopg.connect(os.environ["LEAK_DSN"], application_name=f"poolcheck-app:{os.getpid()}")
    holder = os.fork()
    if holder == 0:
        time.sleep(60)  # holds the inherited socket; never touches it; stops by itself
        os._exit(0)
    print(holder, flush=True)
    time.sleep(60)
    """
)


def _worker_rows(run_dir, pid: int, alive: int) -> bool:
    return any(r["pid"] == pid and r["alive"] == alive and r["connections"] > 0 for r in read_workers(run_dir / WORKERS_CSV))


@pytest.mark.slow
def test_a_connection_outliving_its_killed_process_is_reported(tmp_path):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20}) as server:
        env = {**os.environ, "POOLCHECK_DSN": server.superuser_dsn}
        collector = ManagedProcess(
            "collector",
            [sys.executable, "-m", "loadtests.sources.collector", "--out", str(tmp_path), "--interval", "0.1", "--max-seconds", "60"],
            log_path=tmp_path / "collector.log", env=env, ready=lambda: has_data_row(tmp_path / "connections.csv"),
        )
        scraper = ManagedProcess(
            "scraper",
            [sys.executable, "-m", "loadtests.sources.scraper", "--out", str(tmp_path), "--interval", "0.2", "--max-seconds", "60"],
            log_path=tmp_path / "scraper.log", env=os.environ.copy(), ready=(tmp_path / WORKERS_CSV).exists,
        )
        leaker = subprocess.Popen(
            [sys.executable, "-c", _LEAKER], stdout=subprocess.PIPE, text=True, env={**os.environ, "LEAK_DSN": server.app_dsn}
        )
        holder = int(leaker.stdout.readline())
        try:
            with collector, scraper:
                wait_until(lambda: _worker_rows(tmp_path, leaker.pid, alive=1), timeout=15, what="the worker seen alive")
                leaker.send_signal(signal.SIGKILL)
                leaker.wait()
                wait_until(lambda: _worker_rows(tmp_path, leaker.pid, alive=0), timeout=15, what="the orphan seen")
        finally:
            os.kill(holder, signal.SIGKILL)
            leaker.kill()
            leaker.wait()
    orphans = orphan_figures(read_workers(tmp_path / WORKERS_CSV), sessions=None, app_prefix="poolcheck-app:", origin=None)
    assert [w["pid"] for w in orphans["workers"]] == [leaker.pid]
    assert orphans["connections_max"] == 1
