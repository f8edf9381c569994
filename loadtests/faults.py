"""Faults injected during a run, and what each one cost.

`--fault worker-kill@T` SIGKILLs one gunicorn worker T seconds into the load,
`--fault worker-term@T` SIGTERMs one (it finishes its requests and exits),
`--fault db-restart@T` fast-restarts the embedded server, and
`--fault db-terminate-idle@T` terminates the app's idle backends. Each fault is
an event in `faults.jsonl`; the summary measures the failures it caused and
how long until requests succeeded again with connections back within budget.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

logger = logging.getLogger("poolcheck.faults")

FAULTS_JSONL = "faults.jsonl"
WORKER_KILL = "worker-kill"
WORKER_TERM = "worker-term"
DB_RESTART = "db-restart"
DB_TERMINATE_IDLE = "db-terminate-idle"
KINDS = (WORKER_KILL, WORKER_TERM, DB_RESTART, DB_TERMINATE_IDLE)
WORKER_FAULTS = (WORKER_KILL, WORKER_TERM)
DATABASE_FAULTS = (DB_RESTART, DB_TERMINATE_IDLE)

_SPEC = re.compile(r"^(?P<kind>[a-z-]+)@(?P<at>\d+(?:\.\d+)?)s?$")


@dataclass(frozen=True)
class Fault:
    kind: str
    at_s: float

    def __str__(self) -> str:
        return f"{self.kind}@{self.at_s:g}"


def parse_fault(spec: str) -> Fault:
    """`KIND@SECONDS` into a Fault; ValueError names what is wrong."""
    match = _SPEC.match(spec.strip())
    if match is None:
        raise ValueError(f"expected KIND@SECONDS (KIND one of {', '.join(KINDS)}), got {spec!r}")
    if match["kind"] not in KINDS:
        raise ValueError(f"unknown fault {match['kind']!r}; known: {', '.join(KINDS)}")
    return Fault(match["kind"], float(match["at"]))


def kill_one_worker(master_pid: int, *, signum: int = signal.SIGKILL) -> int:
    """Signal (SIGKILL by default) the youngest worker of a gunicorn master; gunicorn starts a new one."""
    workers = psutil.Process(master_pid).children()
    if not workers:
        raise RuntimeError(f"gunicorn {master_pid} has no workers to kill")
    victim = max(workers, key=lambda p: p.create_time())
    os.kill(victim.pid, signum)
    return victim.pid


def terminate_idle(superuser_dsn: str, *, app_prefix: str) -> int:
    """pg_terminate_backend() on every idle backend of the app; return how many."""
    with psycopg.connect(superuser_dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND state = 'idle' AND application_name LIKE %s",
            (app_prefix + "%",),
        ).fetchall()
    return sum(1 for (done,) in rows if done)


def record(run_dir: Path, event: dict[str, Any]) -> None:
    with open(run_dir / FAULTS_JSONL, "a") as f:
        f.write(json.dumps(event) + "\n")


def read_events(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / FAULTS_JSONL
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line after a crash
    return events


def _history(run_dir: Path, load_start: float) -> list[tuple[float, int, int]]:
    """(seconds into the load, cumulative requests, cumulative failures) per Locust history row."""
    path = run_dir / "locust_stats_history.csv"
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") != "Aggregated":
                continue
            try:
                t = float(row["Timestamp"]) - load_start
                rows.append((t, int(row["Total Request Count"]), int(row["Total Failure Count"])))
            except (KeyError, ValueError):
                continue
    return rows


def _failures_between(history: list[tuple[float, int, int]], start: float, end: float) -> int:
    before = [f for t, _, f in history if t <= start]
    upto = [f for t, _, f in history if t <= end]
    return (upto[-1] if upto else 0) - (before[-1] if before else 0)


def _recovered_at(history: list[tuple[float, int, int]], at_s: float) -> float | None:
    """First history row after the fault from which requests succeed without new failures."""
    later = [row for row in history if row[0] > at_s]
    for (t0, req0, fail0), (t1, req1, fail1) in zip(later, later[1:]):
        if fail1 == fail0 and req1 > req0:
            return t0
    return None


def _connections_back(connections: list[dict[str, Any]], after_s: float, limit: int) -> float | None:
    for row in connections:
        if row["elapsed_s"] >= after_s and row["total"] <= limit:
            return row["elapsed_s"]
    return None


def fault_figures(
    run_dir: Path,
    *,
    events: list[dict[str, Any]],
    connections: list[dict[str, Any]],
    pools_total: int,
) -> list[dict[str, Any]]:
    """For each fault: failures it caused and seconds until the app recovered.

    Times are seconds since the collector's start (`elapsed_s`), the common
    axis of the run; `load_start_epoch` in each event aligns Locust's history.
    """
    figures = []
    for event in events:
        load_start = event["load_start_epoch"]
        at_load = event["at_s"]
        history = _history(run_dir, load_start)
        requests_ok = _recovered_at(history, at_load)
        offset = event["elapsed_s"] - at_load  # load time -> collector time
        conns_ok = _connections_back(connections, event["elapsed_s"], pools_total)
        recovered = None
        if requests_ok is not None and conns_ok is not None:
            recovered = max(requests_ok + offset, conns_ok) - event["elapsed_s"]
        end = requests_ok if requests_ok is not None else float("inf")
        figures.append(
            {
                **{k: event[k] for k in ("kind", "at_s", "elapsed_s", "detail") if k in event},
                "failures_caused": _failures_between(history, at_load - 1, end + 1),
                "recovery_s": round(max(recovered, 0.0), 2) if recovered is not None else None,
            }
        )
    return figures


def event(fault: Fault, *, elapsed_s: float, load_start_epoch: float, detail: str) -> dict[str, Any]:
    return {**asdict(fault), "elapsed_s": round(elapsed_s, 3), "load_start_epoch": load_start_epoch, "detail": detail}
