"""The foundation's figures: embedded server start-up, and the default run's wall time."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from loadtests.run.embedded_server import embedded_server


def server_ready(results_dir: Path, *, repeat: int = 5) -> dict[str, Any]:
    """Seconds from start to the first accepted connection, and including initdb."""
    ready, total = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as run_dir:
            t0 = time.monotonic()
            with embedded_server(run_dir=Path(run_dir), settings={"max_connections": 40}) as server:
                total.append(time.monotonic() - t0)
                ready.append(server.ready_seconds or 0.0)
    return {
        "repeat": repeat,
        "postmaster_ready_s_median": round(statistics.median(ready), 3),
        "initdb_plus_ready_s_median": round(statistics.median(total), 3),
        "initdb_plus_ready_s_max": round(max(total), 3),
    }


def default_run(results_dir: Path) -> dict[str, Any]:
    """Wall time of `poolcheck run` with its defaults (what `make loadtest` runs)."""
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.cli", "run", "--results-dir", str(results_dir)],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - t0
    return {"exit_code": done.returncode, "wall_s": round(wall, 1), "run_dir": done.stdout.strip().splitlines()[-1]}
