"""Helpers for tests that run the real harness: embedded server, gunicorn, Locust."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest


@dataclass
class RunResult:
    returncode: int
    stdout: str
    stderr: str
    results_dir: Path

    @property
    def run_dir(self) -> Path:
        return Path(self.stdout.strip().splitlines()[-1])

    def json(self, name: str) -> Any:
        return json.loads((self.run_dir / name).read_text())


def poolcheck(*args: str, results_dir: Path, timeout: float = 240) -> RunResult:
    """Run the CLI as a user would, in its own process."""
    argv = [sys.executable, "-m", "loadtests.cli", *args, "--results-dir", str(results_dir)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return RunResult(done.returncode, done.stdout, done.stderr, results_dir)


def assert_refused(returncode: int, stdout: str, stderr: str, *, names: str, results_dir: Path) -> None:
    """Bad input as the standards want it: exit 2, one line on stderr that names the problem, no traceback,
    no password (the bad DSNs of the tests carry `pw123`), and nothing started in the results folder."""
    assert returncode == 2, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], stderr
    assert "Traceback" not in stderr and "pw123" not in stdout + stderr
    started = [p for p in results_dir.iterdir() if not p.name.startswith(".")] if results_dir.exists() else []
    assert started == []


def leftover_processes(run: RunResult) -> list[str]:
    """Processes of the run still alive, by the pids it recorded and the workers it saw."""
    manifest = run.json("manifest.json")
    summary = run.json("summary.json")
    pids = {(role, pid) for role, group in manifest["pids"].items() for pid in group}
    pids |= {("worker", pid) for pid in summary["connections"]["workers_seen"]}
    alive = []
    for role, pid in sorted(pids):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{role} {pid}")
        except psutil.NoSuchProcess:
            pass
    return alive


def require(present: bool, missing: str) -> None:
    """Skip a test whose tool is missing on a developer's machine; under CI (`CI=true`) fail it instead,
    so that a suite which silently tested less never passes there."""
    if present:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{missing} (CI=true: a missing tool fails the suite)")
    pytest.skip(missing)


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    return tmp_path / "results"


SHORT_RUN = ["--duration", "20", "--quiet-seconds", "5", "--burst-seconds", "6", "--burst-users", "24"]


@pytest.fixture(scope="session")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """One short real run (3 workers x max_size 4), shared by tests that only read its folder."""
    results = tmp_path_factory.mktemp("short-run") / "results"
    return poolcheck(
        "run", *SHORT_RUN, "--workers", "3", "--max-size", "4", "--sample-interval", "0.1",
        results_dir=results,
    )
