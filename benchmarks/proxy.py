"""What the cloud-proxy emulator costs: the relay's added round-trip time, and a run's throughput through it.

Both are ratios measured in one run, interleaved so that the machine's drift
falls on both sides alike: blocks of `SELECT 1` direct and through the relay
on one embedded server, then whole `poolcheck run`s with and without
`--proxy-idle-cut` (a cut far longer than the run: nothing is cut).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from loadtests.run.embedded_server import embedded_server
from loadtests.run.proxy_process import app_dsn_through, proxy_process, relay_port, upstream_of

RUN = ["--workers", "2", "--max-size", "4", "--duration", "14", "--cycles", "2", "--burst-seconds", "4",
       "--quiet-seconds", "3", "--burst-users", "16", "--baseline-users", "2"]


def _round_trips(dsn: str, *, queries: int) -> list[float]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT 1")
        times = []
        for _ in range(queries):
            t0 = time.perf_counter()
            conn.execute("SELECT 1")
            times.append(time.perf_counter() - t0)
    return times


def relay_round_trip(results_dir: Path, *, blocks: int = 10, queries: int = 500) -> dict[str, Any]:
    """Median `SELECT 1` round trip direct and through the relay, alternating blocks of `queries`."""
    with tempfile.TemporaryDirectory() as tmp, embedded_server(run_dir=Path(tmp), settings={}) as server:
        with proxy_process(run_dir=Path(tmp), upstream=upstream_of(server.app_dsn), idle_cut=3600, mode="reset",
                           max_seconds=600):
            through = app_dsn_through(server.app_dsn, relay_port(Path(tmp)))
            direct_times, relay_times = [], []
            for block in range(blocks):
                first, second = (server.app_dsn, through) if block % 2 == 0 else (through, server.app_dsn)
                for dsn in (first, second):
                    (direct_times if dsn == server.app_dsn else relay_times).extend(_round_trips(dsn, queries=queries))
    direct, relayed = statistics.median(direct_times), statistics.median(relay_times)
    return {
        "queries_each": blocks * queries,
        "direct_median_ms": round(direct * 1000, 3),
        "relay_median_ms": round(relayed * 1000, 3),
        "added_ms": round((relayed - direct) * 1000, 3),
        "ratio": round(relayed / direct, 2),
    }


def relay_run_throughput(results_dir: Path, *, pairs: int = 2) -> dict[str, Any]:
    """Requests/s and the median p95 in the bursts of `poolcheck run`, direct and through the relay, alternating."""
    figures: dict[str, list[dict[str, float]]] = {"direct": [], "relay": []}
    for pair in range(pairs):
        for side in (("direct", "relay") if pair % 2 == 0 else ("relay", "direct")):
            extra = ["--proxy-idle-cut", "3600"] if side == "relay" else []
            done = subprocess.run([sys.executable, "-m", "loadtests.cli", "run", *RUN, *extra,
                                   "--results-dir", str(results_dir)], capture_output=True, text=True)
            run_dir = Path(done.stdout.strip().splitlines()[-1])
            summary = json.loads((run_dir / "summary.json").read_text())
            bursts = summary.get("bursts") or {}
            figures[side].append({"rps": float(bursts.get("rps") or summary["requests"]["rps"]),
                                  "p95_ms": float(bursts.get("p95_ms") or summary["requests"]["p95_ms"] or 0),
                                  "failures": int(summary["requests"]["failures"])})
    medians = {side: {key: round(statistics.median(f[key] for f in runs), 2) for key in ("rps", "p95_ms")}
               for side, runs in figures.items()}
    return {
        "runs_each": pairs,
        "load": " ".join(RUN),
        "direct": medians["direct"],
        "relay": medians["relay"],
        "rps_ratio": round(medians["relay"]["rps"] / medians["direct"]["rps"], 3),
        "p95_ratio": round(medians["relay"]["p95_ms"] / medians["direct"]["p95_ms"], 3) if medians["direct"]["p95_ms"] else None,
        "failures": {side: sum(f["failures"] for f in runs) for side, runs in figures.items()},
    }
