"""What a run has recorded so far, followed from the files the collector and Locust append to.

The terminal display (loadtests/live/terminal.py) and the Locust web UI's
Database tab (loadtests/live/web_ui.py) both show it.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.budget import ServerSideBudget, budget_words
from loadtests.failure_classes import OTHER
from loadtests.run_folder import CONNECTIONS_CSV, FAILURES_BY_SECOND_CSV, LOCUST_HISTORY_CSV
from loadtests.sources.collector import STATE_GROUPS
from loadtests.sources.csv_tail import CsvFollower


@dataclass(frozen=True)
class ConnectionLines:
    """The limits a live view measures connections against: the budget, usable, max_connections.

    `pools` is the part of the budget the pools that reach the server may hold (None: not known):
    the app's, or behind PgBouncer its server pools (`pools_name` says which).
    """

    budget: int
    usable: int
    max_connections: int
    pools: int | None = None
    other_clients: int = 0
    pools_name: str = "pools"

    @classmethod
    def of(cls, side: ServerSideBudget, *, usable: int, max_connections: int) -> "ConnectionLines":
        return cls(side.total, usable, max_connections, pools=side.pools, other_clients=side.other_clients,
                   pools_name=side.pools_name)

    def budget_text(self) -> str:
        if self.pools is None:
            return f"budget {self.budget}"
        return budget_words(total=self.budget, pools_total=self.pools, other_clients=self.other_clients,
                            pools_name=self.pools_name)


STALE_AFTER_S = 3.0  # Locust writes a history row every second while it runs


def _float(value: str | None) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


class LiveState:
    """What a run has recorded so far, read incrementally from its folder."""

    def __init__(self, run_dir: Path, *, keep_samples: int = 1200) -> None:
        self._connections = CsvFollower(run_dir / CONNECTIONS_CSV)
        self._history = CsvFollower(run_dir / LOCUST_HISTORY_CSV)
        self._failures = CsvFollower(run_dir / FAILURES_BY_SECOND_CSV)
        self.samples: deque[dict[str, Any]] = deque(maxlen=keep_samples)
        self.peak = 0
        self.load: dict[str, str] = {}
        self._previous_load: dict[str, str] = {}
        self._load_seen_at: float | None = None  # monotonic time of the last new history row
        self.failures_by_class: Counter[str] = Counter()

    def update(self) -> "LiveState":
        for row in self._connections.new_rows():
            sample = {"t": float(row.get("elapsed_s") or 0), "total": _int(row.get("total"))}
            sample.update({state: sum(_int(row.get(c)) for c in columns) for state, columns in STATE_GROUPS.items()})
            self.samples.append(sample)
            self.peak = max(self.peak, sample["total"])
        for row in self._history.new_rows():
            if row.get("Name") == "Aggregated":
                self._previous_load, self.load = self.load, row
                self._load_seen_at = time.monotonic()
        for row in self._failures.new_rows():
            self.failures_by_class[row.get("error_class") or OTHER] += _int(row.get("count"))
        return self

    @property
    def connections_now(self) -> int:
        return self.samples[-1]["total"] if self.samples else 0

    @property
    def load_stopped(self) -> bool:
        """Locust wrote no history row for a while: it has stopped (it writes one a second while it runs)."""
        return self._load_seen_at is not None and time.monotonic() - self._load_seen_at > STALE_AFTER_S

    @property
    def users(self) -> int:
        return 0 if self.load_stopped else _int(self.load.get("User Count"))

    @property
    def rps(self) -> float:
        """Requests per second between Locust's last two history rows.

        Not Locust's own Requests/s: that is a rolling mean up to its last
        request, which keeps its last value once the users have stopped.
        """
        if self.load_stopped or not self._previous_load:
            return 0.0
        span = _float(self.load.get("Timestamp")) - _float(self._previous_load.get("Timestamp"))
        served = _float(self.load.get("Total Request Count")) - _float(self._previous_load.get("Total Request Count"))
        return max(served / span, 0.0) if span > 0 else 0.0

    @property
    def failures(self) -> int:
        return _int(self.load.get("Total Failure Count"))

    def failures_text(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in self.failures_by_class.most_common(3))
        return f"{self.failures} ({classes})" if classes else str(self.failures)
