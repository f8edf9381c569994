"""The sweep's figure: wall time of a 3 x 3 sweep with 20 s cells (the target is under 6 minutes on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SWEEP_3X3 = ["--workers", "1,2,4", "--max-size", "2,4,8", "--duration", "20"]
TARGET_S = 360


def sweep_3x3(results_dir: Path) -> dict[str, Any]:
    """`poolcheck sweep` over 3 worker counts x 3 max_size values, one 20 s run per cell."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.cli", "sweep", *SWEEP_3X3, "--results-dir", str(results_dir)],
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    lines = done.stdout.strip().splitlines()
    sweep_dir = Path(lines[-1]) if lines else None
    if sweep_dir is None or not (sweep_dir / "sweep.json").exists():
        return {"exit_code": done.returncode, "wall_s": round(wall, 1), "error": done.stderr.strip()[-500:]}
    plan = json.loads((sweep_dir / "sweep.json").read_text())
    cell_walls = [run["wall_s"] for cell in plan["cells"] for run in cell["runs"]]
    recommendation = json.loads((sweep_dir / "sweep_summary.json").read_text())["recommendation"]
    return {
        "exit_code": done.returncode,
        "wall_s": round(wall, 1),
        "under_target": wall < TARGET_S,
        "cells_run": len(cell_walls),
        "cell_wall_s_min": min(cell_walls, default=None),
        "cell_wall_s_max": max(cell_walls, default=None),
        "recommended": recommendation["cell"],
        "sweep_dir": str(sweep_dir),
    }
