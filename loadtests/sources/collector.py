"""The collector: samples the server's client connections into connections.csv.

Runs as its own process with one connection of its own, which it leaves out
of every count (the budget counts it as an extra client). Each sample is
written and flushed at once, so a killed run keeps all but the last one.

    POOLCHECK_DSN=... python -m loadtests.sources.collector --out RUN_DIR --interval 0.1
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import psycopg

from loadtests.sources.attribution import (
    Backend,
    SocketOwners,
    WatchFilter,
    client_key,
    listening_pids,
    parse_watch_filter,
    socket_table,
    socket_table_through_relay,
    unnamed_endpoints,
)
from loadtests.proxy.events import relayed_clients
from loadtests.run_folder import BACKENDS_CSV, CONNECTIONS_CSV, SERVER_JSON, epoch, iso_time
from loadtests.sources.backends import BACKEND_COLUMNS, backend_row
from loadtests.sources.sampling_loop import SamplingLoop

logger = logging.getLogger("poolcheck.collector")

STATES = ("active", "idle", "idle in transaction", "idle in transaction (aborted)", "fastpath function call", "disabled")
COLUMNS = (
    "timestamp",
    "elapsed_s",
    "total",
    "active",
    "idle",
    "idle_in_transaction",
    "idle_in_transaction_aborted",
    "other",
    "oldest_backend_s",
    "oldest_idle_s",
    "query_ms",
    "by_application",
)

# The state columns as the charts and the live view draw them, bottom of a stack first;
# the aborted state is rare and joins its parent.
STATE_GROUPS = {
    "active": ("active",),
    "idle in transaction": ("idle_in_transaction", "idle_in_transaction_aborted"),
    "idle": ("idle",),
    "other": ("other",),
}

_ACTIVITY_SQL = """
SELECT coalesce(state, ''), application_name, host(client_addr), client_port,
       coalesce(usename, ''), coalesce(datname, ''),
       extract(epoch FROM clock_timestamp() - backend_start)::float8,
       CASE WHEN state LIKE 'idle%%' THEN extract(epoch FROM clock_timestamp() - state_change)::float8 END,
       pid, extract(epoch FROM backend_start)::float8
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""

_SETTINGS_SQL = """
SELECT name, setting FROM pg_settings
WHERE name IN ('max_connections', 'superuser_reserved_connections', 'reserved_connections',
               'server_version', 'idle_session_timeout', 'idle_in_transaction_session_timeout',
               'tcp_keepalives_idle', 'log_connections', 'log_disconnections', 'log_destination',
               'log_line_prefix', 'lc_messages')
"""

_STATE_COLUMN = {
    "active": "active",
    "idle": "idle",
    "idle in transaction": "idle_in_transaction",
    "idle in transaction (aborted)": "idle_in_transaction_aborted",
}


@dataclass
class Sample:
    """One look at pg_stat_activity, reduced to counts."""

    timestamp: float
    elapsed_s: float
    states: Counter[str] = field(default_factory=Counter)
    by_application: dict[str, Counter[str]] = field(default_factory=dict)
    oldest_backend_s: float = 0.0
    oldest_idle_s: float = 0.0
    query_ms: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.states.values())


def reduce_rows(rows: Iterable[Sequence[Any]], *, timestamp: float, elapsed_s: float) -> Sample:
    """Counts by state and by application_name from pg_stat_activity rows."""
    sample = Sample(timestamp=timestamp, elapsed_s=elapsed_s)
    for state, app_name, backend_age, idle_age in rows:
        column = _STATE_COLUMN.get(state, "other")
        sample.states[column] += 1
        sample.by_application.setdefault(app_name or "", Counter())[column] += 1
        sample.oldest_backend_s = max(sample.oldest_backend_s, backend_age or 0.0)
        sample.oldest_idle_s = max(sample.oldest_idle_s, idle_age or 0.0)
    return sample


def to_row(sample: Sample) -> list[Any]:
    return [
        iso_time(sample.timestamp),
        f"{sample.elapsed_s:.3f}",
        sample.total,
        sample.states["active"],
        sample.states["idle"],
        sample.states["idle_in_transaction"],
        sample.states["idle_in_transaction_aborted"],
        sample.states["other"],
        f"{sample.oldest_backend_s:.3f}",
        f"{sample.oldest_idle_s:.3f}",
        f"{sample.query_ms:.2f}",
        json.dumps({app: dict(c) for app, c in sorted(sample.by_application.items())}, separators=(",", ":")),
    ]


def parse_row(row: dict[str, str]) -> dict[str, Any]:
    """A connections.csv row with its numbers and the per-application counts decoded."""
    out: dict[str, Any] = {"timestamp": row["timestamp"]}
    for name in ("elapsed_s", "oldest_backend_s", "oldest_idle_s", "query_ms"):
        out[name] = float(row[name])
    for name in ("total", "active", "idle", "idle_in_transaction", "idle_in_transaction_aborted", "other"):
        out[name] = int(row[name])
    out["by_application"] = json.loads(row["by_application"] or "{}")
    return out


def read_connections(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a connections.csv; a torn last line is skipped."""
    rows = []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            try:
                rows.append(parse_row(row))
            except (KeyError, TypeError, ValueError):
                continue
    return rows


def clock_origin(row: dict[str, Any]) -> float:
    """Epoch seconds of the collector's time zero (its `elapsed_s` axis), from any parsed row."""
    return epoch(row["timestamp"]) - row["elapsed_s"]


def first_sample(path: Path) -> dict[str, Any] | None:
    """The first complete row of a connections.csv, read without reading the rest (it may be growing)."""
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                return parse_row(row)
    except (OSError, KeyError, TypeError, ValueError):
        return None
    return None


def collector_start(path: Path) -> float | None:
    """When the collector started (epoch seconds), from its first sample; None before it has one."""
    row = first_sample(path)
    return None if row is None else clock_origin(row)


def read_server_settings(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(_SETTINGS_SQL).fetchall())


class Collector:
    """Samples on a fixed schedule until asked to stop."""

    def __init__(
        self,
        *,
        dsn: str,
        out_dir: Path,
        interval: float,
        max_seconds: float,
        watch: WatchFilter = WatchFilter(),
        app_port: int | None = None,
        pooler: str | None = None,
        relay_port: int | None = None,
        relay_events: Path | None = None,
    ) -> None:
        self.dsn = dsn
        self.watch = watch
        # Behind a pooler every backend is the pooler's: the application_name it carries is
        # only that of the last client it served, so it names no worker.
        self.pooler = pooler
        self.owners = SocketOwners()  # its lookup learns the server's port on connect
        # The cloud-proxy emulator in front of the server: its sockets are paired with the app's in its events.
        self.relay = (relay_port, relay_events) if relay_port and relay_events else None
        # The port an app of your own serves on this machine: its listeners are the workers.
        self.app_port = app_port
        self.app_servers: set[int] | None = None
        self._owner_lookups = -1
        self._seen: set[str] = set()
        self._snapshot_taken = False
        self._backends: Any = None  # backends.csv's writer, once open
        self.out_dir = out_dir
        self.interval = interval
        self.loop = SamplingLoop(interval=interval, max_seconds=max_seconds)

    def _connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=5, application_name="poolcheck-collector")
        (server_port,) = conn.execute("SELECT coalesce(inet_server_port(), 0)").fetchone() or (0,)
        if server_port and self.relay:
            relay_port, events = self.relay
            self.owners.lookup = functools.partial(
                socket_table_through_relay, server_port=server_port, relay_port=relay_port,
                relayed=functools.partial(relayed_clients, events))
        elif server_port:
            self.owners.lookup = functools.partial(socket_table, server_port=server_port)
        return conn

    def _write_settings(self, conn: psycopg.Connection) -> None:
        settings = read_server_settings(conn)
        (self.out_dir / SERVER_JSON).write_text(json.dumps(settings, indent=2) + "\n")

    def _sample(self, conn: psycopg.Connection, start: float) -> Sample:
        t0 = time.time()
        rows = conn.execute(_ACTIVITY_SQL).fetchall()
        sample = reduce_rows(self._attributed(rows, seen_at=t0), timestamp=t0, elapsed_s=t0 - start)
        sample.query_ms = (time.time() - t0) * 1000
        return sample

    def _attributed(self, rows: list[Sequence[Any]], *, seen_at: float) -> list[tuple[str, str, float, float | None]]:
        """The watched backends as (state, client, ages): clients named as in loadtests/sources/attribution.py.

        Every backend not seen before, watched or not, goes to backends.csv.
        """
        everyone = [Backend(*row) for row in rows]
        backends = [b for b in everyone if self.watch.matches(b)]
        if self.pooler is not None:
            keys = {b.session_id: self.pooler for b in backends}
            self._record_new(everyone, keys, seen_at=seen_at)
            return [(b.state, self.pooler, b.backend_age_s, b.idle_age_s) for b in backends]
        owners = self.owners.resolve(unnamed_endpoints(backends))
        if self.app_port and self.owners.lookups != self._owner_lookups:
            # New endpoints, maybe a new worker: who serves the app now. None while nobody
            # listens here (the app runs elsewhere): every owner is then the app's.
            self._owner_lookups = self.owners.lookups
            self.app_servers = listening_pids(self.app_port) or None
        keys = {b.session_id: client_key(b, owners, app_servers=self.app_servers) for b in backends}
        self._record_new(everyone, keys, seen_at=seen_at)
        return [(b.state, keys[b.session_id], b.backend_age_s, b.idle_age_s) for b in backends]

    def _record_new(self, backends: list[Backend], keys: dict[str, str], *, seen_at: float) -> None:
        if self._backends is None:
            return
        writer, f = self._backends
        at_start, self._snapshot_taken = not self._snapshot_taken, True
        for b in backends:
            # A backend still starting up has no user in pg_stat_activity yet: recorded unwatched, its
            # session would be left out of the server log's count. It is recorded once it has one.
            if b.session_id not in self._seen and b.user:
                self._seen.add(b.session_id)
                writer.writerow(backend_row(b, seen_at=iso_time(seen_at), at_start=at_start,
                                            client=keys.get(b.session_id, ""), watched=b.session_id in keys))
        f.flush()

    def run(self) -> None:
        start = time.time()
        conn = self._connect()
        self._write_settings(conn)
        path = self.out_dir / CONNECTIONS_CSV
        with open(self.out_dir / BACKENDS_CSV, "w", newline="") as seen, open(path, "w", newline="") as f:
            self._backends = (csv.writer(seen), seen)
            self._backends[0].writerow(BACKEND_COLUMNS)
            writer = csv.writer(f)
            writer.writerow(COLUMNS)
            f.flush()
            conn = self._loop(conn, writer, f, start)
        conn.close()

    def _loop(self, conn: psycopg.Connection, writer: Any, f: TextIO, start: float) -> psycopg.Connection:
        for _ in self.loop.ticks():
            try:
                writer.writerow(to_row(self._sample(conn, start)))
                f.flush()
            except psycopg.OperationalError as exc:
                logger.warning("sample failed (%s); reconnecting", str(exc).strip().splitlines()[0])
                conn.close()
                conn = self.loop.reconnect(self._connect, errors=(psycopg.OperationalError,)) or conn
        return conn


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.sources.collector", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop by itself after this long")
    parser.add_argument("--watch", action="append", default=[], metavar="NAME=VALUE",
                        help="count only backends of this database, user or application_name prefix (repeatable)")
    parser.add_argument("--pooler", metavar="NAME",
                        help="the backends are this pooler's server connections (e.g. pgbouncer): count them under NAME")
    parser.add_argument("--app-port", type=int, default=None,
                        help="the port an app of your own serves here: processes not listening on it are other clients")
    parser.add_argument("--relay-port", type=int, default=None,
                        help="the cloud-proxy emulator's port: the server's clients on its sockets are the app's behind it")
    parser.add_argument("--relay-events", type=Path, default=None,
                        help="the emulator's proxy_events.jsonl, which pairs its sockets with the app's")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    dsn = os.environ.get("POOLCHECK_DSN")
    if not dsn:
        print("collector: POOLCHECK_DSN is not set", file=sys.stderr)
        return 2
    try:
        watch = parse_watch_filter(args.watch)
    except ValueError as exc:
        print(f"collector: --watch: {exc}", file=sys.stderr)
        return 2
    collector = Collector(
        dsn=dsn, out_dir=args.out, interval=args.interval, max_seconds=args.max_seconds, watch=watch,
        pooler=args.pooler,
        app_port=args.app_port,
        relay_port=args.relay_port,
        relay_events=args.relay_events,
    )
    collector.loop.install_signal_handlers()
    collector.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
