"""Clean up after a runner that was killed: its children and its server's data.

A run records each child's pid with its start time, and the embedded server's
data directory. The next run stops whatever of that is still alive, with what
those children forked (their process groups), by those records only, never by
matching process names, and marks the old run
`abandoned` so its folder still yields a summary and a report.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from loadtests.run_folder import MANIFEST, POSTGRES_DIR_TXT, SERVER_LOG_DIR, read_json, write_json

logger = logging.getLogger("poolcheck.leftovers")

ABANDONED = "abandoned"
_START_TOLERANCE_S = 0.05


def _same_process(pid: int, started: float | None) -> psutil.Process | None:
    """The live process with this pid and start time, or None (gone or pid reused)."""
    try:
        process = psutil.Process(pid)
        if started is not None and abs(process.create_time() - started) > _START_TOLERANCE_S:
            return None
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except psutil.NoSuchProcess:
        return None


def _stop_group(process: psutil.Process, *, timeout: float = 5.0) -> None:
    """SIGTERM the process's group, wait, then SIGKILL it."""
    pgid = os.getpgid(process.pid)
    os.killpg(pgid, signal.SIGTERM)
    _, alive = psutil.wait_procs([process], timeout=timeout)
    if alive:
        os.killpg(pgid, signal.SIGKILL)


def _orphans_of(pid: int, started: float | None) -> list[psutil.Process]:
    """What is left in the process group of a recorded child that has died: gunicorn workers whose
    master was killed, say. A group outlives its leader while it has members, and Linux gives its id
    to no new process meanwhile; so when nothing runs under the recorded pid, the members of that
    group started after the recorded child are what it forked."""
    if started is None or _same_process(pid, None) is not None:
        return []  # the pid runs again (reused): its group is not the recorded one
    orphans = []
    for process in psutil.process_iter():
        try:
            if (
                os.getpgid(process.pid) == pid
                and process.create_time() >= started - _START_TOLERANCE_S
                and process.status() != psutil.STATUS_ZOMBIE
            ):
                orphans.append(process)
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    return orphans


def _stop_orphans(orphans: list[psutil.Process], *, timeout: float = 5.0) -> None:
    for process in orphans:
        process.terminate()
    _, alive = psutil.wait_procs(orphans, timeout=timeout)
    for process in alive:
        process.kill()


def _runner_alive(manifest: dict[str, Any]) -> bool:
    runner = manifest.get("runner") or {}
    return runner.get("pid") is not None and _same_process(runner["pid"], runner.get("started")) is not None


def _stop_children(manifest: dict[str, Any]) -> list[str]:
    starts = manifest.get("process_starts", {})
    stopped = []
    for role, pids in manifest.get("pids", {}).items():
        for pid in pids:
            process = _same_process(pid, starts.get(str(pid)))
            if process is not None:
                _stop_group(process)
                stopped.append(f"{role} {pid}")
            elif orphans := _orphans_of(pid, starts.get(str(pid))):
                _stop_orphans(orphans)
                stopped += [f"{role} {pid}'s orphan {orphan.pid}" for orphan in orphans]
    return stopped


def _remove_server_data(run_dir: Path) -> list[str]:
    """Stop a server still running on the recorded data directory, then remove the directory."""
    record = run_dir / POSTGRES_DIR_TXT
    if not record.exists():
        return []
    work_dir = Path(record.read_text().strip())
    removed = []
    pid_file = work_dir / "data" / "postmaster.pid"
    if pid_file.exists():
        lines = pid_file.read_text().splitlines()
        process = _same_process(int(lines[0]), None) if lines and lines[0].isdigit() else None
        # The postmaster names its data directory in its pid file: check it is this one.
        if process is not None and len(lines) > 1 and Path(lines[1]) == work_dir / "data":
            process.send_signal(signal.SIGINT)  # fast shutdown
            _, alive = psutil.wait_procs([process], timeout=10)
            for leftover in alive:
                leftover.kill()
            removed.append(f"postgres {process.pid}")
    if work_dir.exists():
        log_dir = work_dir / "log"
        if log_dir.exists():
            shutil.copytree(log_dir, run_dir / SERVER_LOG_DIR, dirs_exist_ok=True)
        shutil.rmtree(work_dir, ignore_errors=True)
        removed.append(f"data directory of {run_dir.name}")
    return removed


def clean_leftovers(results_dir: Path) -> list[str]:
    """Stop what killed runs left behind; return a line per thing stopped or removed."""
    cleaned: list[str] = []
    for manifest_path in sorted(results_dir.glob(f"*/{MANIFEST}")):
        try:
            manifest = read_json(manifest_path)
        except (OSError, ValueError):
            continue
        if manifest.get("status") != "running" or _runner_alive(manifest):
            continue
        run_dir = manifest_path.parent
        found = _stop_children(manifest) + _remove_server_data(run_dir)
        manifest["status"] = ABANDONED
        manifest["abandoned_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        write_json(manifest_path, manifest)
        cleaned += [f"{run_dir.name}: stopped {item}" for item in found] or [f"{run_dir.name}: marked abandoned"]
    for line in cleaned:
        logger.warning("%s", line)
    return cleaned
