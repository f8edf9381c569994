"""Interrupts, a killed runner, and faults: real processes, checked by pid."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from conftest import poolcheck
from loadtests.sources.collector import read_connections
from loadtests.run.processes import wait_until

pytestmark = pytest.mark.slow

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
    assert time.monotonic() - signalled < 10 + 2  # every child stopped within 10 s
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
    nxt = poolcheck("run", "--duration", "4", "--workers", "1", "--max-size", "2", results_dir=results_dir)
    assert "cleaned up after a killed run" in nxt.stdout
    assert _manifest(run_dir)["status"] == "abandoned"
    assert _processes_of(run_dir) == []
    assert not Path((run_dir / "postgres_dir.txt").read_text().strip()).exists()


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
    run = poolcheck(
        "run", "--duration", "24", "--workers", "2", "--max-size", "4", "--quiet-seconds", "4",
        "--burst-seconds", "8", "--max-failure-ratio", "0.2",
        "--fault", "worker-kill@5", "--fault", "db-terminate-idle@10", "--fault", "db-restart@16",
        results_dir=results_dir,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr
    summary = run.json("summary.json")
    faults = {f["kind"]: f for f in summary["faults"]}
    assert set(faults) == {"worker-kill", "db-terminate-idle", "db-restart"}
    for fault in faults.values():
        assert fault["failures_caused"] >= 0
        assert fault["recovery_s"] is not None and fault["recovery_s"] < 8, fault
    assert "SIGKILL worker" in faults["worker-kill"]["detail"]
    # The run went on: requests after the last fault, a new worker in place of the killed one.
    assert summary["requests"]["total"] > 200
    assert len(summary["connections"]["workers_seen"]) >= 3
    # No samples lost outside the restart's outage.
    rows = read_connections(run.run_dir / "connections.csv")
    restart = faults["db-restart"]["elapsed_s"]
    gaps = [
        (a["elapsed_s"], b["elapsed_s"])
        for a, b in zip(rows, rows[1:])
        if b["elapsed_s"] - a["elapsed_s"] > 0.5 and not (a["elapsed_s"] - 1 <= restart <= b["elapsed_s"] + 1)
    ]
    assert gaps == []
