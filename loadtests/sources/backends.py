"""backends.csv: every server backend the collector saw, once, with the client it was attributed to.

The first rows (`at_start` 1) are pg_stat_activity as the run found it: the
sessions a pool opened before the run, which the server log of the run's own
time shows only if they end. Later rows are backends first seen by a later
sample. Exact accounting joins these with the log by `session_id`, so a session
the log rebuilds is attributed by the same rules as the samples: the watch
filter, then the owning process or client address (loadtests/sources/attribution.py).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.sources.attribution import Backend

BACKEND_COLUMNS = (
    "seen_at", "at_start", "session_id", "pid", "backend_start", "user", "database",
    "application_name", "client_addr", "client_port", "client", "watched",
)


@dataclass(frozen=True)
class SeenBackend:
    """One row of backends.csv."""

    session_id: str
    pid: int
    backend_start: float
    user: str
    database: str
    application_name: str
    client: str
    watched: bool
    at_start: bool


def backend_row(backend: Backend, *, seen_at: str, at_start: bool, client: str, watched: bool) -> list[Any]:
    return [
        seen_at, int(at_start), backend.session_id, backend.pid, f"{backend.backend_start:.6f}", backend.user,
        backend.database, backend.application_name, backend.client_addr or "", backend.client_port
        if backend.client_port is not None else "", client, int(watched),
    ]


def read_backends(path: Path) -> dict[str, SeenBackend]:
    """backends.csv by session_id; empty when there is none (older runs, or the collector never sampled)."""
    if not path.exists():
        return {}
    seen: dict[str, SeenBackend] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                seen.setdefault(row["session_id"], SeenBackend(
                    session_id=row["session_id"], pid=int(row["pid"]), backend_start=float(row["backend_start"]),
                    user=row["user"], database=row["database"], application_name=row["application_name"],
                    client=row["client"], watched=row["watched"] == "1", at_start=row["at_start"] == "1",
                ))
            except (KeyError, TypeError, ValueError):
                continue  # a torn last line
    return seen
