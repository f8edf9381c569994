"""The benchmarks stay importable (`make bench` is not part of the suite), and team_numbers reads the log right."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from datetime import datetime, timezone

import benchmarks
from benchmarks.__main__ import BENCHMARKS, LONG
from benchmarks.team_numbers import _from_the_log


def test_every_benchmark_module_imports_and_the_runner_lists_them():
    for module in pkgutil.iter_modules(benchmarks.__path__):
        importlib.import_module(f"benchmarks.{module.name}")
    assert LONG <= set(BENCHMARKS)
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "team_numbers" in done.stdout


def _record(at: float, session: str, message: str) -> str:
    stamp = datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    return json.dumps({"timestamp": stamp, "session_id": session, "message": message})


def test_team_numbers_times_each_close_after_the_burst_and_what_stays_open(tmp_path):
    t0 = 1_800_000_000.0
    auth = "connection authorized: user=app database=poolcheck application_name=poolcheck-app:{}"
    lines = [
        _record(t0, "a", auth.format(7)),  # opened before the burst, idle to the end: open, 100 s old
        _record(t0 + 10, "b", auth.format(7)),
        _record(t0 + 11, "c", auth.format(7)),
        _record(t0 + 12, "x", "connection authorized: user=postgres database=postgres application_name=psql"),
        _record(t0 + 40, "b", "disconnection: session time: 0:00:30.000"),  # 20 s after the burst's end
        _record(t0 + 100, "c", "disconnection: session time: 0:01:29.000"),  # 80 s after
        "not json",
    ]
    (tmp_path / "postgres").mkdir()
    (tmp_path / "postgres" / "postgresql.json").write_text("\n".join(lines) + "\n")
    figures = _from_the_log(tmp_path, burst_end=t0 + 20, run_end=t0 + 100)
    assert figures["by_worker"] == {
        "poolcheck-app:7": {
            "closed_after_burst_s": [20.0, 80.0],
            "gaps_between_closes_s": [60.0],
            "open_at_end": 1,
            "open_at_end_ages_s": [100.0],
        }
    }
