"""Soak: a long run while the collector's memory and open files are watched.

    python -m benchmarks.soak [--minutes 30]     (make soak)

A collector that leaks shows a rising resident set or file count; a flat line
is what a 30-minute run must show. Writes results/soak-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from loadtests.run.processes import wait_until
from loadtests.run_folder import host_info, versions, write_json


def _collector_pid(results_dir: Path) -> int:
    def found() -> bool:
        return _read_pid(results_dir) is not None

    wait_until(found, timeout=60, what="the soak run's collector")
    pid = _read_pid(results_dir)
    assert pid is not None
    return pid


def _read_pid(results_dir: Path) -> int | None:
    for manifest in results_dir.glob("2*/manifest.json"):
        try:
            pids = json.loads(manifest.read_text())["pids"].get("collector")
        except (ValueError, KeyError):
            continue
        if pids:
            return pids[0]
    return None


def _watch(pid: int, runner: subprocess.Popen[bytes], every: float) -> list[dict[str, float]]:
    process = psutil.Process(pid)
    samples = []
    start = time.monotonic()
    while runner.poll() is None:
        try:
            with process.oneshot():
                samples.append({
                    "t_s": round(time.monotonic() - start, 1),
                    "rss_bytes": process.memory_info().rss,
                    "open_files": process.num_fds(),
                    "cpu_s": sum(process.cpu_times()[:2]),
                })
        except psutil.NoSuchProcess:
            break
        time.sleep(every)  # a sampling period, not a synchronisation
    return samples


def _trend(samples: list[dict[str, float]], key: str) -> dict[str, Any]:
    """First, last and max after a warm-up minute, and the least-squares slope per hour."""
    steady = [s for s in samples if s["t_s"] >= 60] or samples
    xs, ys = [s["t_s"] for s in steady], [s[key] for s in steady]
    slope = statistics.linear_regression(xs, ys).slope * 3600 if len(set(xs)) > 1 else 0.0
    return {"first": ys[0], "last": ys[-1], "max": max(ys), "min": min(ys), "slope_per_hour": round(slope, 1)}


def soak(*, minutes: float, results_dir: Path, every: float = 10.0) -> dict[str, Any]:
    results_dir.mkdir(parents=True, exist_ok=True)
    work = results_dir / f"soak-runs-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    argv = [sys.executable, "-m", "loadtests.cli", "run", "--duration", str(minutes * 60), "--workers", "2",
            "--max-size", "4", "--burst-users", "12", "--burst-seconds", "20", "--quiet-seconds", "40",
            "--max-failure-ratio", "0.01", "--results-dir", str(work)]
    runner = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        samples = _watch(_collector_pid(work), runner, every)
    finally:
        runner.wait()
    return {
        "minutes": minutes,
        "exit_code": runner.returncode,
        "samples": len(samples),
        "rss_bytes": _trend(samples, "rss_bytes"),
        "open_files": _trend(samples, "open_files"),
        "collector_cpu_s": samples[-1]["cpu_s"] if samples else None,
        "series": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    figures = soak(minutes=args.minutes, results_dir=args.results_dir)
    out = {"host": host_info(), "versions": versions(), "soak": figures}
    path = args.results_dir / f"soak-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    write_json(path, out)
    print(json.dumps({k: v for k, v in figures.items() if k != "series"}, indent=2))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
