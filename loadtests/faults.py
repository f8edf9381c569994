"""Faults injected during a run: what a fault is, and the record each one leaves in faults.jsonl.

`--fault worker-kill@T` SIGKILLs one app worker (gunicorn's or uvicorn's) T seconds into the load,
`--fault worker-term@T` SIGTERMs one (it finishes its requests and exits),
`--fault db-restart@T` fast-restarts the embedded server, and
`--fault db-terminate-idle@T` terminates the app's idle backends. Each fault is
an event in `faults.jsonl`. The runner does them (loadtests/run/fault_injection.py);
the summary measures what each cost (loadtests/analysis/fault_figures.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from loadtests.run_folder import FAULTS_JSONL

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


def event(fault: Fault, *, elapsed_s: float, load_start_epoch: float, detail: str) -> dict[str, Any]:
    """One line of faults.jsonl: the fault, when on the collector's clock, the load's start, what was done."""
    return {**asdict(fault), "elapsed_s": round(elapsed_s, 3), "load_start_epoch": load_start_epoch, "detail": detail}


def record(run_dir: Path, event: dict[str, Any]) -> None:
    with open(run_dir / FAULTS_JSONL, "a") as f:
        f.write(json.dumps(event) + "\n")


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event of a faults.jsonl."""
    if not path.exists():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn last line after a crash
    return events
