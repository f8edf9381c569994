"""Interrupts, a killed runner, and faults: real processes, checked by pid."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from conftest import poolcheck
from own_counts import (
    RECOVERY_TOLERANCE_S, Watch, locust_failures, locust_failures_between, locust_totals, log_epoch, log_records, own_recovery,
)
from loadtests.sources.collector import read_connections
from loadtests.run.processes import wait_until

pytestmark = pytest.mark.slow

STOP_TIMEOUTS_S = 5 + 3 + 8 + 3 + 5  # ManagedProcess stop_timeout of each child (loadtests/run/runner.py)
LOAD = ["--duration", "30", "--workers", "2", "--max-size", "4", "--quiet-seconds", "3", "--burst-seconds", "6"]


def _start(results_dir: Path, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "loadtests.cli", "run", *args, "--results-dir", str(results_dir)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _run_dir(results_dir: Path) -> Path | None:
    found = [p for p in results_dir.glob("2*") if p.is_dir()] if results_dir.exists() else []
    return found[0] if found else None


def _when(results_dir: Path, condition: Callable[[Path], bool], *, timeout: float = 60) -> Path:
    """Wait until the run folder exists and `condition` holds for it."""
    wait_until(lambda: (d := _run_dir(results_dir)) is not None and condition(d), timeout=timeout, what="run phase")
    run_dir = _run_dir(results_dir)
    assert run_dir is not None
    return run_dir


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def _history_rows(run_dir: Path) -> int:
    path = run_dir / "locust_stats_history.csv"
    return len(path.read_text().splitlines()) - 1 if path.exists() else 0


def _processes_of(run_dir: Path) -> list[str]:
    """Live processes that belong to the run: recorded pids, or any process naming its folders."""
    marks = [str(run_dir)]
    pg_dir = run_dir / "postgres_dir.txt"
    if pg_dir.exists():
        marks.append(pg_dir.read_text().strip())
    alive = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["status"] != psutil.STATUS_ZOMBIE and any(m in cmdline for m in marks):
            alive.append(f"{process.info['pid']} {cmdline[:80]}")
    manifest = _manifest(run_dir)
    starts = manifest.get("process_starts", {})
    for role, pids in manifest["pids"].items():
        for pid in pids:
            try:
                p = psutil.Process(pid)
                if p.status() != psutil.STATUS_ZOMBIE and abs(p.create_time() - starts.get(str(pid), 0)) < 0.05:
                    alive.append(f"{role} {pid}")
            except psutil.NoSuchProcess:
                pass
    return alive


PHASES = {
    "server starting": lambda d: (d / "postgres_dir.txt").exists(),
    "workers booting": lambda d: (d / "gunicorn-h1.log").exists(),
    "load running": lambda d: _history_rows(d) >= 3,
    # summary.json is written just before report.html, which takes a few seconds.
    "writing the report": lambda d: (d / "summary.json").exists(),
}


@pytest.mark.parametrize("phase", list(PHASES))
def test_interrupt_stops_everything_and_keeps_the_data(phase, results_dir):
    load = [*LOAD[:1], "6", *LOAD[2:]] if phase == "writing the report" else LOAD
    runner = _start(results_dir, *load)
    run_dir = _when(results_dir, PHASES[phase])
    runner.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    stdout, stderr = runner.communicate(timeout=30)
    assert runner.returncode == 130, stdout + stderr
    # Every child stopped within its own stop timeout, one after another: Locust 5 s, scraper 3 s,
    # gunicorn 8 s, collector 3 s, server 5 s = 24 s at worst (3 to 6 s is usual); a busy machine
    # stays inside that sum, a child that ignores its stop signal and its SIGKILL does not.
    assert time.monotonic() - signalled < STOP_TIMEOUTS_S + 2
    assert _processes_of(run_dir) == []
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["verdict"] == "interrupted"
    assert _manifest(run_dir)["status"] == "interrupted"
    pg_dir = (run_dir / "postgres_dir.txt").read_text().strip()
    assert not Path(pg_dir).exists()
    if phase == "writing the report":
        assert "poolcheck " + run_dir.name + ": interrupted" in (run_dir / "report.html").read_text()
    if phase in ("load running", "writing the report"):
        assert len(read_connections(run_dir / "connections.csv")) > 10
        assert summary["requests"]["total"] > 0


def test_second_interrupt_forces_a_fast_stop(results_dir):
    runner = _start(results_dir, *LOAD)
    run_dir = _when(results_dir, PHASES["load running"])
    runner.send_signal(signal.SIGINT)
    runner.send_signal(signal.SIGINT)
    stdout, stderr = runner.communicate(timeout=30)
    assert runner.returncode == 130, stdout + stderr
    assert _processes_of(run_dir) == []


def test_killed_runner_leaves_readable_data_and_the_next_run_cleans_up(results_dir):
    runner = _start(results_dir, *LOAD)
    run_dir = _when(results_dir, lambda d: _history_rows(d) >= 4)
    runner.send_signal(signal.SIGKILL)
    runner.communicate(timeout=10)
    # Written incrementally: readable right after the kill.
    assert len(read_connections(run_dir / "connections.csv")) > 10
    assert _history_rows(run_dir) >= 3
    report = subprocess.run(
        [sys.executable, "-m", "loadtests.cli", "summarize", str(run_dir)], capture_output=True, text=True, timeout=60
    )
    assert report.returncode == 0, report.stderr
    partial = json.loads((run_dir / "summary.json").read_text())
    assert partial["complete"] is False and partial["verdict"] == "incomplete"
    # The next run finds what is left of the killed one, by its records.
    nxt = poolcheck("run", "--duration", "4", "--quiet-seconds", "1", "--burst-seconds", "2", "--workers", "1", "--max-size", "2",
                   results_dir=results_dir)
    assert "cleaned up after a killed run" in nxt.stdout
    assert _manifest(run_dir)["status"] == "abandoned"
    assert _processes_of(run_dir) == []
    assert not Path((run_dir / "postgres_dir.txt").read_text().strip()).exists()


def test_workers_orphaned_with_their_master_are_found_by_the_next_run(results_dir):
    """The runner and the gunicorn master killed at once: nothing tells the workers, and only the
    master's pid is recorded. The test's own view of the process table says what must be stopped.
    The server was restarted first (`db-restart`): the manifest must name its new postmaster too."""
    from loadtests.run.leftovers import clean_leftovers

    watch = Watch(*LOAD, "--fault", "db-restart@1", results_dir=results_dir)
    try:
        run_dir = _when(results_dir, lambda d: _history_rows(d) >= 2 and (d / "faults.jsonl").exists())
        wait_until(lambda: len(watch.gunicorn_workers()) >= 2 and len(watch.postmasters()) == 2, timeout=10,
                   what="the test's view of the workers and of the restarted server")
        first, postmaster = watch.postmasters()
        manifest = _manifest(run_dir)
        assert manifest["pids"]["postgres"] == [first.pid, postmaster.pid], (manifest["pids"], first.pid, postmaster.pid)
        assert manifest["process_starts"][str(postmaster.pid)] == pytest.approx(postmaster.started, abs=0.05)
        (master,) = manifest["pids"]["gunicorn"]
        os.kill(master, signal.SIGKILL)
        watch.runner.kill()
    finally:
        watch.finish(timeout=30)
    workers = watch.gunicorn_workers()
    orphans = [w for w in workers if w.alive()]
    try:
        assert orphans, "no orphaned worker: the case this test is for did not arise"
        cleaned = clean_leftovers(results_dir)
        assert all(any(f"orphan {w.pid}" in line for line in cleaned) for w in orphans), cleaned
        wait_until(lambda: watch.still_alive() == [], timeout=15, what="every process the run started to stop")
        assert _manifest(run_dir)["status"] == "abandoned"
    finally:
        for process in watch.processes.values():  # whatever a failure left, by the test's own record
            if process.alive():
                os.kill(process.pid, signal.SIGKILL)


def test_leftover_processes_are_stopped_by_recorded_pid(tmp_path):
    """A runner's children that outlived it (the case the parent-death signal misses)."""
    from loadtests.run.leftovers import clean_leftovers
    from loadtests.run.processes import start_time

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], process_group=0)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], process_group=0)
    try:
        run_dir = tmp_path / "results" / "20260101-000000-old"
        run_dir.mkdir(parents=True)
        dead_runner = subprocess.Popen([sys.executable, "-c", "pass"])
        dead_runner.wait()
        manifest = {
            "run_id": run_dir.name,
            "status": "running",
            "runner": {"pid": dead_runner.pid, "started": 0},
            "pids": {"gunicorn": [child.pid]},
            "process_starts": {str(child.pid): start_time(child.pid)},
        }
        (run_dir / "manifest.json").write_text(json.dumps(manifest))
        cleaned = clean_leftovers(tmp_path / "results")
        assert cleaned == [f"{run_dir.name}: stopped gunicorn {child.pid}"]
        assert child.wait(timeout=10) is not None
        assert stranger.poll() is None  # never by name or guess: only what was recorded
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "abandoned"
    finally:
        for p in (child, stranger):
            p.kill()
            p.wait()


def test_faults_are_events_with_their_cost_and_recovery(results_dir):
    # db-terminate-idle in the quiet phase after the first burst (4 s quiet, 8 s burst): idle backends to end.
    at = {"worker-kill": 5, "db-terminate-idle": 13, "db-restart": 18}
    duration = 24
    watch = Watch(
        "--duration", str(duration), "--workers", "2", "--max-size", "4", "--quiet-seconds", "4",
        "--burst-seconds", "8", "--max-failure-ratio", "0.2", "--watch-filter", "user=app",
        *(arg for kind, t in at.items() for arg in ("--fault", f"{kind}@{t}")),
        results_dir=results_dir, probe="/items/read",
    )
    run = watch.finish()
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    faults = {f["kind"]: f for f in summary["faults"]}
    assert set(faults) == set(at)
    events = {e["kind"]: e for e in map(json.loads, (run.run_dir / "faults.jsonl").read_text().splitlines())}
    rows = read_connections(run.run_dir / "connections.csv")
    origin = datetime.fromisoformat(rows[0]["timestamp"]).timestamp() - rows[0]["elapsed_s"]

    # worker-kill: the process table shows the killed worker gone and a new one forked after it.
    killed = int(re.search(r"SIGKILL worker (\d+)", faults["worker-kill"]["detail"]).group(1))
    workers = watch.gunicorn_workers()
    (victim,) = [w for w in workers if w.pid == killed]
    replacements = [w for w in workers if w.started > victim.started and w.first_seen >= origin + events["worker-kill"]["elapsed_s"] - 1]
    assert not victim.alive() and len(replacements) >= 1, [(w.pid, w.started) for w in workers]
    assert replacements[0].pid in summary["connections"]["workers_seen"]

    # db-terminate-idle: as many backends terminated as the server logged, and more than none.
    terminated = int(re.search(r"terminated (\d+) idle backends", faults["db-terminate-idle"]["detail"]).group(1))
    when = origin + events["db-terminate-idle"]["elapsed_s"]
    logged = [
        r for r in log_records(run.run_dir)
        if "terminating connection due to administrator command" in r.get("message", "")
        and abs(log_epoch(r["timestamp"]) - when) < 2
    ]
    assert terminated > 0 and len(logged) == terminated, (terminated, len(logged))

    # db-restart: a new postmaster, and the test's own poll saw the app reconnect to it.
    first, second = watch.postmasters()
    assert second.pid != first.pid and second.started > first.started
    assert _manifest(run.run_dir)["pids"]["postgres"] == [first.pid, second.pid]
    restarted = origin + events["db-restart"]["elapsed_s"]
    assert any(p.at > restarted and p.total > 0 for p in watch.polls)

    # Failures by class add up with Locust's own files.
    requests, failures = locust_totals(run.run_dir)
    assert summary["requests"]["failures"] == failures == sum(summary["errors_by_class"].values())
    assert summary["errors_by_class"] == dict(locust_failures(run.run_dir))
    assert sum(f["failures_caused"] for f in faults.values()) <= failures

    # Recovery and failures caused: the tool's figures (Locust's history, the collector's samples) against
    # the test's own (its probe requests, its poll, Locust's per-second failure counts), each fault before
    # the next (or the end).
    pools_total = summary["budget"]["pools_total"]
    ends = sorted(at.values())[1:] + [duration]
    for (kind, t), next_t in zip(sorted(at.items(), key=lambda kv: kv[1]), ends):
        event = events[kind]
        nominal = event["load_start_epoch"] + t
        own = own_recovery(watch, event, until=event["load_start_epoch"] + next_t, origin=origin, pools_total=pools_total)
        own_failures = None if own is None else locust_failures_between(run.run_dir, nominal - 1, nominal + own + 1)
        print(f"{kind}: recovery tool {faults[kind]['recovery_s']} s, own {own}; "
              f"failures caused tool {faults[kind]['failures_caused']}, own {own_failures}")
        assert own is not None and faults[kind]["recovery_s"] == pytest.approx(own, abs=RECOVERY_TOLERANCE_S), (kind, own, faults[kind])
        assert faults[kind]["recovery_s"] < next_t - t, faults[kind]
        assert faults[kind]["failures_caused"] == own_failures, (kind, own_failures, faults[kind])
    assert summary["requests"]["total"] == requests > 200
    # No samples lost outside the restart's outage. 1.5 s is 15 sample intervals: a busy 2-core machine
    # forking a new worker (imports) has stalled the collector for ~0.5 s; a lost sampler loses seconds.
    restart = faults["db-restart"]["elapsed_s"]
    gaps = [
        (a["elapsed_s"], b["elapsed_s"])
        for a, b in zip(rows, rows[1:])
        if b["elapsed_s"] - a["elapsed_s"] > 1.5 and not (a["elapsed_s"] - 1 <= restart <= b["elapsed_s"] + 1)
    ]
    assert gaps == []
    assert watch.still_alive() == []
