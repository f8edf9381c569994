"""The idle-drain field report's own settings, measured: `max_idle` 60 s, `max_lifetime` 1800 s.

    python -m benchmarks team_numbers        (make bench ARGS=team_numbers; about 33 minutes)

One real run as the team ran it: `uvicorn --workers 2`, psycopg pools of
min_size 4 and max_size 7, one burst that fills every pool, then 31 minutes
with no request at all. Two claims are measured, each from the server's own
log read here line by line (not with the harness's parser), beside what the
run's summary says:

- the drain: a pool above min_size closes one unused connection per max_idle,
  so the 3 extra connections per worker close about 60 s apart, the last
  about 3 minutes after the burst;
- max_lifetime does not close idle connections: the min_size connections that
  sat idle in the pool are still open when the run stops, older than 1800 s.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

WORKERS, MIN_SIZE, MAX_SIZE = 2, 4, 7
MAX_IDLE_S, MAX_LIFETIME_S = 60.0, 1800.0
# The burst starts after 5 s and lasts 15 s; the run ends 100 s after max_lifetime,
# which psycopg shortens by up to 5 % per connection (jitter), so every idle
# connection is past its max_lifetime well before the end.
QUIET_S, BURST_S = 5.0, 15.0
TOTAL_S = MAX_LIFETIME_S + 100.0
APP_PREFIX = "poolcheck-app:"


def team_numbers(results_dir: Path) -> dict[str, Any]:
    work = results_dir / "team-numbers"
    argv = [
        sys.executable, "-m", "loadtests.cli", "run", "--server", "uvicorn", "--workers", str(WORKERS),
        "--min-size", str(MIN_SIZE), "--max-size", str(MAX_SIZE),
        "--max-idle", str(MAX_IDLE_S), "--max-lifetime", str(MAX_LIFETIME_S), "--prod-max-idle", str(MAX_IDLE_S),
        "--duration", str(TOTAL_S), "--cycles", "1", "--quiet-seconds", str(QUIET_S),
        "--burst-seconds", str(BURST_S), "--burst-users", "40", "--baseline-users", "0",
        "--spread-users", "--hold-ms", "600", "--results-dir", str(work),
    ]
    done = subprocess.run(argv, capture_output=True, text=True)
    run_dir = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else None
    if run_dir is None or not (run_dir / "summary.json").is_file():
        return {"exit_code": done.returncode, "error": done.stderr.strip()[-500:]}
    summary = json.loads((run_dir / "summary.json").read_text())
    manifest = json.loads((run_dir / "manifest.json").read_text())
    burst_end = _epoch_iso(manifest["load_started_at"]) + QUIET_S + BURST_S
    lifecycle = summary["lifecycle"]
    return {
        "exit_code": done.returncode,
        "run_dir": str(run_dir),
        "settings": {"workers": WORKERS, "min_size": MIN_SIZE, "max_size": MAX_SIZE,
                     "max_idle_s": MAX_IDLE_S, "max_lifetime_s": MAX_LIFETIME_S, "quiet_after_burst_s": TOTAL_S - QUIET_S - BURST_S},
        "summary_drain": lifecycle["drain"]["bursts"],
        "summary_ages": {k: v for k, v in lifecycle["ages"].items() if k != "over_max_lifetime"},
        "server_log": _from_the_log(run_dir, burst_end=burst_end, run_end=_epoch_iso(manifest["load_ended_at"])),
    }


def _from_the_log(run_dir: Path, *, burst_end: float, run_end: float) -> dict[str, Any]:
    """Per worker: when each connection closed after the burst, and what was still open at the end."""
    opened: dict[str, tuple[str, float]] = {}
    closed: dict[str, float] = {}
    for line in (run_dir / "postgres" / "postgresql.json").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        message, key = record.get("message", ""), record.get("session_id")
        if message.startswith("connection authorized:"):
            app = re.search(r"application_name=(\S+)", message)
            if app and app.group(1).startswith(APP_PREFIX):
                opened[key] = (app.group(1), _epoch_log(record["timestamp"]))
        elif message.startswith("disconnection:") and key in opened:
            closed[key] = _epoch_log(record["timestamp"])
    workers: dict[str, dict[str, Any]] = {}
    for key, (app, start) in opened.items():
        worker = workers.setdefault(app, {"closed_after_burst_s": [], "open_at_end": 0, "open_at_end_ages_s": []})
        end = closed.get(key)
        if end is not None and burst_end < end <= run_end:
            worker["closed_after_burst_s"].append(round(end - burst_end, 1))
        if start <= run_end and (end is None or end > run_end):
            worker["open_at_end"] += 1
            worker["open_at_end_ages_s"].append(round(run_end - start, 1))
    for worker in workers.values():
        closes = sorted(worker["closed_after_burst_s"])
        worker["closed_after_burst_s"] = closes
        worker["gaps_between_closes_s"] = [round(b - a, 1) for a, b in zip(closes, closes[1:])]
        worker["open_at_end_ages_s"].sort()
    return {"burst_end": "load start + 20 s", "run_end": "the load's end, before the pools are closed", "by_worker": workers}


def _epoch_iso(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def _epoch_log(stamp: str) -> float:
    return datetime.strptime(stamp.removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()
