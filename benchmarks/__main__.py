"""Run the benchmarks and write one JSON file under results/: `python -m benchmarks [NAME ...]`."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from loadtests.run_folder import host_info, versions, write_json

from . import foundation, proxy, sweep, team_numbers, telemetry

BENCHMARKS = {
    "server_ready": foundation.server_ready,
    "default_run": foundation.default_run,
    "sweep_3x3": sweep.sweep_3x3,
    "collector_overhead": telemetry.collector_overhead,
    "sampling_fidelity": telemetry.sampling_fidelity,
    "team_numbers": team_numbers.team_numbers,
    "relay_round_trip": proxy.relay_round_trip,
    "relay_run_throughput": proxy.relay_run_throughput,
}
# Run only when named: each takes over half an hour.
LONG = {"team_numbers"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="benchmarks to run (default: all but the long ones: " + ", ".join(sorted(LONG)) + ")")
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    args = parser.parse_args(argv)
    names = args.names or [name for name in BENCHMARKS if name not in LONG]
    out = {
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(),
        "versions": versions(),
        "benchmarks": {},
    }
    for name in names:
        print(f"benchmark {name} ...", flush=True)
        out["benchmarks"][name] = BENCHMARKS[name](args.results_dir)
        print(json.dumps(out["benchmarks"][name], indent=2), flush=True)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"bench-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}.json"
    write_json(path, out)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
