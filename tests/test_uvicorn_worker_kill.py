"""Workers under `--server uvicorn`: a worker killed mid-run (`--fault worker-kill`), its supervisor killed with the runner.

gunicorn's `child_exit` hook drops a dead worker's gauges; uvicorn's
supervisor has no hook, so without app/metrics.py's `forget_dead_workers` the
killed worker's last pool figures would be scraped to the end of the run as
if it still held its connections. One real run, watched from outside: the
test's own process table, its own requests to the app and its own poll of
pg_stat_activity.
"""

from __future__ import annotations

import csv
import json
import os
import re
import signal
from datetime import datetime

import pytest

from own_counts import RECOVERY_TOLERANCE_S, Watch, locust_failures_between, own_recovery, run_folder
from loadtests.run.leftovers import clean_leftovers
from loadtests.run.processes import wait_until
from loadtests.sources.collector import read_connections

pytestmark = pytest.mark.slow

KILL_AT, DURATION = 4, 12
# The scraper asks /metrics once a second: the killed worker's series may be in the scrape just after the kill.
SCRAPE_INTERVAL_S = 1.0


def test_worker_kill_under_uvicorn(tmp_path):
    watch = Watch(
        "--server", "uvicorn", "--workers", "2", "--max-size", "4", "--duration", str(DURATION),
        "--quiet-seconds", "3", "--burst-seconds", "4", "--cycles", "1", "--max-failure-ratio", "0.2",
        "--watch-filter", "user=app", "--fault", f"worker-kill@{KILL_AT}", results_dir=tmp_path / "results", probe="/items/read",
    )
    run = watch.finish()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    summary = run.json("summary.json")
    (fault,) = summary["faults"]
    (event,) = map(json.loads, (run.run_dir / "faults.jsonl").read_text().splitlines())
    killed = int(re.search(r"SIGKILL worker (\d+)", fault["detail"]).group(1))

    # The process table: the victim was a worker of uvicorn's supervisor, and the supervisor started another.
    (supervisor,) = [p for p in watch.seen(cmdline_has="-m uvicorn --factory") if p.ppid == watch.runner.pid]
    workers = sorted((p for p in watch.processes.values() if p.ppid == supervisor.pid), key=lambda p: p.started)
    (victim,) = [w for w in workers if w.pid == killed]
    replacements = [w for w in workers if w.started > victim.started and w.pid != killed]
    assert not victim.alive() and replacements, [(w.pid, w.cmdline[:3]) for w in workers]
    assert f"Child process [{killed}] died" in (run.run_dir / "uvicorn-h1.log").read_text()
    assert replacements[-1].pid in summary["connections"]["workers_seen"]

    # /metrics forgot the dead worker: no scrape after the kill (and one scrape interval) has its series.
    rows = read_connections(run.run_dir / "connections.csv")
    origin_epoch = datetime.fromisoformat(rows[0]["timestamp"]).timestamp() - rows[0]["elapsed_s"]
    killed_at = event["elapsed_s"]
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        stats = list(csv.DictReader(f))
    after = [r for r in stats if float(r["elapsed_s"]) > killed_at + SCRAPE_INTERVAL_S + 0.5]
    assert after, "no scrape after the kill"
    assert {int(r["pid"]) for r in after if int(r["pid"]) == killed} == set()
    assert any(int(r["pid"]) == replacements[-1].pid for r in after)

    # Recovery and failures caused against the test's own requests, poll and Locust's per-second counts.
    own = own_recovery(watch, event, until=event["load_start_epoch"] + DURATION, origin=origin_epoch,
                       pools_total=summary["budget"]["pools_total"])
    nominal = event["load_start_epoch"] + KILL_AT
    assert own is not None and fault["recovery_s"] == pytest.approx(own, abs=RECOVERY_TOLERANCE_S), (own, fault)
    assert fault["failures_caused"] == locust_failures_between(run.run_dir, nominal - 1, nominal + own + 1)
    assert watch.still_alive() == []


def test_uvicorn_workers_orphaned_with_their_supervisor_are_stopped_by_the_next_run(tmp_path):
    """The runner and uvicorn's supervisor killed at once: its spawned workers (and multiprocessing's resource
    tracker) live on, in the supervisor's process group; the next run's clean-up finds and stops them."""
    results = tmp_path / "results"
    watch = Watch("--server", "uvicorn", "--workers", "2", "--max-size", "2", "--duration", "40", results_dir=results)
    try:
        wait_until(lambda: _load_started(results), timeout=60, what="the load of the run to kill")
        run_dir = run_folder(results)
        (supervisor,) = json.loads((run_dir / "manifest.json").read_text())["pids"]["uvicorn"]
        wait_until(lambda: len(_children(watch, supervisor)) >= 3, timeout=10, what="the test's view of uvicorn's children")
        os.kill(supervisor, signal.SIGKILL)
        watch.runner.kill()
    finally:
        watch.finish(timeout=30)
    orphans = [p for p in _children(watch, supervisor) if p.alive()]
    try:
        assert len(orphans) >= 3, "no orphaned worker: the case this test is for did not arise"
        cleaned = clean_leftovers(results)
        assert all(any(f"orphan {p.pid}" in line for line in cleaned) for p in orphans), cleaned
        wait_until(lambda: watch.still_alive() == [], timeout=15, what="every process the run started to stop")
    finally:
        for process in watch.processes.values():  # whatever a failure left, by the test's own record
            if process.alive():
                os.kill(process.pid, signal.SIGKILL)


def _load_started(results) -> bool:
    run_dir = run_folder(results)
    try:
        return run_dir is not None and "load_started_at" in json.loads((run_dir / "manifest.json").read_text())
    except (OSError, ValueError):
        return False


def _children(watch: Watch, pid: int) -> list:
    return [p for p in watch.processes.values() if p.ppid == pid]
