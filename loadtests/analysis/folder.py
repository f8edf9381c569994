"""RunFolder: a run folder's files, each read and parsed at most once.

The summary, the exact counts, the report and the comparison all read a run
through one `RunFolder`; built once at the end of a run, it hands each of
them the rows the others already parsed. Missing files read as empty: an
interrupted run still has a summary and a report.

The data files are final once the run's children have stopped. manifest.json
and summary.json are the runner's own records, which it rewrites at its end:
`forget_records()` makes the next read see the new ones.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from loadtests.faults import read_events
from loadtests.proxy.events import read_events as read_proxy_events
from loadtests.run_folder import (
    BACKENDS_CSV,
    CONNECTIONS_CSV,
    FAILURES_BY_SECOND_CSV,
    FAULTS_JSONL,
    LOAD_JSON,
    LOCUST_FAILURES_CSV,
    LOCUST_HISTORY_CSV,
    LOCUST_STATS_CSV,
    MANIFEST,
    PGBOUNCER_POOLS_CSV,
    POOL_STATS_CSV,
    PROXY_EVENTS_JSONL,
    REQUESTS_BY_SECOND_CSV,
    SERVER_JSON,
    SUMMARY,
    USERS_CSV,
    WORKERS_CSV,
    app_prefix,
    epoch,
    read_json,
)
from loadtests.sources.backends import SeenBackend, read_backends
from loadtests.sources.collector import clock_origin, read_connections
from loadtests.sources.pgbouncer_pools import read_pools
from loadtests.sources.pool_stats import read_pool_stats, read_workers
from loadtests.sources.server_log import Refusal, Session, find_log, read_records, rebuild_sessions

AGGREGATED = "Aggregated"  # the Name of Locust's row over every endpoint


@dataclass(frozen=True)
class ServerLog:
    """A run's server log as sessions and refusals, every client's (the harness's own too)."""

    source: str  # the log's path inside the run folder
    sessions: list[Session]
    refusals: list[Refusal]
    ends_at: float | None


class RunFolder:
    """The files of one run folder; each property reads its file on first use."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def file(self, name: str) -> Path:
        return self.path / name

    # -- the runner's records ------------------------------------------------------

    @cached_property
    def manifest(self) -> dict[str, Any]:
        return read_json(self.file(MANIFEST))

    @cached_property
    def stored_summary(self) -> dict[str, Any] | None:
        """summary.json as written; None when the folder has none yet."""
        path = self.file(SUMMARY)
        return read_json(path) if path.exists() else None

    def forget_records(self) -> None:
        """The runner rewrote manifest.json or summary.json: read them again on next use."""
        for name in ("manifest", "stored_summary"):
            self.__dict__.pop(name, None)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.path.name))

    @property
    def app_prefix(self) -> str:
        return app_prefix(self.manifest.get("app_name"))

    @property
    def embedded(self) -> bool:
        """Whether the harness started the server (older manifests: no --dsn given)."""
        return bool(self.manifest["server"].get("embedded", self.manifest["config"].get("dsn") is None))

    # -- the samplers' files ------------------------------------------------------

    @cached_property
    def server_settings(self) -> dict[str, Any]:
        """server.json: the settings as the server reported them; empty when the collector never connected."""
        path = self.file(SERVER_JSON)
        return read_json(path) if path.exists() else {}

    @cached_property
    def connections(self) -> list[dict[str, Any]]:
        """connections.csv, parsed (loadtests/sources/collector.py)."""
        path = self.file(CONNECTIONS_CSV)
        return read_connections(path) if path.exists() else []

    @cached_property
    def pgbouncer_pools(self) -> list[dict[str, Any]]:
        """pgbouncer_pools.csv: PgBouncer's SHOW POOLS per sample, for a run behind it; empty otherwise."""
        return read_pools(self.file(PGBOUNCER_POOLS_CSV))

    @cached_property
    def backends(self) -> dict[str, SeenBackend]:
        """backends.csv by session_id: every backend the collector saw, those open at its start first."""
        return read_backends(self.file(BACKENDS_CSV))

    @cached_property
    def pool_stats(self) -> list[dict[str, Any]]:
        """pool_stats.csv: every worker's pool figures per scrape (loadtests/sources/pool_stats.py)."""
        return read_pool_stats(self.file(POOL_STATS_CSV))

    @cached_property
    def workers(self) -> list[dict[str, Any]]:
        """workers.csv: whether each worker pid named by a connection was alive, per scrape."""
        return read_workers(self.file(WORKERS_CSV))

    @cached_property
    def server_log(self) -> ServerLog | None:
        """The server log the folder holds, parsed; None when it holds none.

        ValueError (LogTimezoneError) when its timestamps name a zone that cannot be placed.
        """
        path = find_log(self.path)
        if path is None:
            return None
        records = read_records(path)
        sessions, refusals = rebuild_sessions(records)
        return ServerLog(str(path.relative_to(self.path)), sessions, refusals, records[-1].at if records else None)

    # -- Locust's files and what the locustfile added -------------------------------

    @cached_property
    def locust_totals(self) -> dict[str, str] | None:
        """The last aggregated row of locust_stats.csv: totals and percentiles of the whole load."""
        rows = [r for r in _csv_rows(self.file(LOCUST_STATS_CSV)) if r.get("Name") == AGGREGATED]
        return rows[-1] if rows else None

    @cached_property
    def locust_failures(self) -> list[dict[str, str]]:
        """locust_failures.csv: one row per endpoint and failure message, with its occurrences."""
        return _csv_rows(self.file(LOCUST_FAILURES_CSV))

    @cached_property
    def locust_history(self) -> list[dict[str, str]]:
        """The aggregated rows of Locust's history, one a second (a row without a time is left out)."""
        return [r for r in _csv_rows(self.file(LOCUST_HISTORY_CSV)) if r.get("Name") == AGGREGATED and r.get("Timestamp")]

    @cached_property
    def failures_by_second(self) -> list[dict[str, str]]:
        """The failures of each class per second, as the locustfile counted them (loadtests/load/records.py)."""
        return _csv_rows(self.file(FAILURES_BY_SECOND_CSV))

    @cached_property
    def user_changes(self) -> list[dict[str, str]]:
        """The running users with the moment they changed, as the locustfile saw them (loadtests/load/records.py)."""
        return _csv_rows(self.file(USERS_CSV))

    @cached_property
    def requests_by_second(self) -> list[dict[str, str]]:
        """Requests and failures per second of their end, as Locust counted them (loadtests/load/records.py)."""
        return _csv_rows(self.file(REQUESTS_BY_SECOND_CSV))

    @cached_property
    def fault_events(self) -> list[dict[str, Any]]:
        """faults.jsonl: one event per `--fault` injected (loadtests/faults.py)."""
        return read_events(self.file(FAULTS_JSONL))

    @cached_property
    def proxy_events(self) -> list[dict[str, Any]] | None:
        """proxy_events.jsonl: what the cloud-proxy emulator did (loadtests/proxy/events.py); None without one."""
        path = self.file(PROXY_EVENTS_JSONL)
        return read_proxy_events(path) if path.exists() else None

    # -- the two clocks of a run ---------------------------------------------------

    @cached_property
    def clock_origin(self) -> float | None:
        """Epoch seconds of the collector's time zero (`elapsed_s`), else of the run's start."""
        if self.connections:
            return clock_origin(self.connections[0])
        started = self.manifest.get("started_at")
        return epoch(started) if started else None

    @cached_property
    def load_start(self) -> float | None:
        """Epoch seconds when Locust started the shape: t = 0 of the load; None if it never started.

        Precise when the locustfile recorded it; else Locust's first history row
        (whole seconds), else when the runner saw Locust start.
        """
        path = self.file(LOAD_JSON)
        if path.exists():
            return float(read_json(path)["started_at_epoch"])
        if self.locust_history:
            return float(self.locust_history[0]["Timestamp"])
        started = self.manifest.get("load_started_at")
        return epoch(started) if started else None


    @cached_property
    def load_end(self) -> float | None:
        """Epoch seconds when the load stopped, before the teardown; None if it never started.

        As the runner recorded it (it records it on an interrupt too); else the
        end of the second of Locust's last history row (whole seconds, written
        within the second after), else the run's end.
        """
        if self.load_start is None:
            return None
        ended = self.manifest.get("load_ended_at")
        if ended:
            return epoch(ended)
        if self.locust_history:
            return float(self.locust_history[-1]["Timestamp"]) + 1.0
        ended = self.manifest.get("ended_at")
        return epoch(ended) if ended else None


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
