"""Each worker's pool telemetry for Prometheus: psycopg_pool's stats (or their equivalents) and event-loop lag.

The stats' gauges are gauges, its counters `_total` counters, and its
millisecond counters are exported in seconds (METRIC_NAMES), after
Prometheus' naming conventions.

gunicorn runs one pool per worker process, so a scrape that reaches one
worker must still show them all. prometheus_client's multiprocess mode does
that: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and
`/metrics` merges them, one series per worker `pid` ("liveall": a dead
worker's gauges go away, its counters stay, as Prometheus expects of a
counter). gunicorn's `child_exit` hook marks a worker dead at once; uvicorn's
supervisor has no such hook, so every `/metrics` also drops the gauges of
workers whose process is gone (`forget_dead_workers`). Without that
variable, `/metrics` shows the answering worker only.

The values are refreshed by a small periodic task in each worker, which also
measures how late its own timer fires: the event loop's lag.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, multiprocess

logger = logging.getLogger("poolcheck.app.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
POOL_PREFIX = "poolcheck_pool_"
LOOP_LAG = "poolcheck_event_loop_lag_seconds"

# psycopg_pool's get_stats() keys, which every pool kind answers (app/asyncpg_pool.py, app/sqlalchemy_pool.py);
# counters appear only once they are non-zero, so absent means 0. `overflow` is SQLAlchemy's QueuePool's:
# connections open beyond its pool_size; a pool without an overflow has none.
POOL_GAUGES = ("pool_min", "pool_max", "pool_size", "pool_available", "requests_waiting", "overflow")
POOL_COUNTERS = (
    "requests_num",
    "requests_queued",
    "requests_wait_ms",
    "requests_errors",
    "returns_bad",
    "connections_num",
    "connections_ms",
    "connections_errors",
    "connections_lost",
    "usage_ms",
)
POOL_STATS = POOL_GAUGES + POOL_COUNTERS

# Each stat's name on /metrics, after Prometheus' conventions: counters end in `_total`, durations are in
# seconds (psycopg_pool counts milliseconds). A counter's name is given here with its `_total`.
METRIC_NAMES = {
    "pool_min": POOL_PREFIX + "min_size",
    "pool_max": POOL_PREFIX + "max_size",
    "pool_size": POOL_PREFIX + "connections",
    "pool_available": POOL_PREFIX + "connections_available",
    "requests_waiting": POOL_PREFIX + "requests_waiting",
    "overflow": POOL_PREFIX + "overflow_connections",
    "requests_num": POOL_PREFIX + "requests_total",
    "requests_queued": POOL_PREFIX + "requests_queued_total",
    "requests_wait_ms": POOL_PREFIX + "requests_wait_seconds_total",
    "requests_errors": POOL_PREFIX + "requests_errors_total",
    "returns_bad": POOL_PREFIX + "returns_bad_total",
    "connections_num": POOL_PREFIX + "connections_opened_total",
    "connections_ms": POOL_PREFIX + "connect_seconds_total",
    "connections_errors": POOL_PREFIX + "connections_errors_total",
    "connections_lost": POOL_PREFIX + "connections_lost_total",
    "usage_ms": POOL_PREFIX + "usage_seconds_total",
}
MS_STATS = {"requests_wait_ms", "connections_ms", "usage_ms"}  # exported in seconds


def multiprocess_enabled() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class PoolTelemetry:
    """Publishes one pool's get_stats() and the loop's lag every `interval` seconds.

    The lag exported is the largest of the last `lag_window` seconds of ticks,
    so a scraper that comes once a second still sees a stall between its visits.
    """

    def __init__(self, pool: Any, *, interval: float = 0.25, lag_window: float = 1.0) -> None:
        if interval <= 0 or lag_window < interval:
            raise ValueError(f"interval ({interval}) must be positive and at most lag_window ({lag_window})")
        self.pool = pool
        self.interval = interval
        self.registry = CollectorRegistry()
        self._lags: deque[float] = deque(maxlen=max(1, round(lag_window / interval)))
        self._task: asyncio.Task[None] | None = None
        self._gauges = {name: self._gauge(METRIC_NAMES[name], _help(name)) for name in POOL_GAUGES}
        # Counters are summed over the workers in multiprocess mode unless a label tells them apart: `pid` does,
        # as the gauges' own pid label does. A dead worker's counters stay (a counter never goes back).
        pid = str(os.getpid())
        self._counters = {
            name: Counter(METRIC_NAMES[name], _help(name), ["pid"], registry=self.registry).labels(pid=pid)
            for name in POOL_COUNTERS
        }
        self._counted: dict[str, float] = {}  # get_stats() counter values already added to the Counters
        self._lag = self._gauge(LOOP_LAG, f"largest event-loop lag of the last {lag_window:g} s of {interval:g} s timer ticks")

    def _gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="liveall")

    def publish(self, lag_s: float = 0.0) -> None:
        stats = self.pool.get_stats()
        for name, gauge in self._gauges.items():
            gauge.set(stats.get(name, 0))
        for name, counter in self._counters.items():
            value = stats.get(name, 0)
            added = value - self._counted.get(name, 0)
            if added < 0:  # the pool's counters were reset (a pool reopened): count anew
                added = value
            if added:
                counter.inc(added / 1000 if name in MS_STATS else added)
            self._counted[name] = value
        self._lags.append(max(lag_s, 0.0))
        self._lag.set(max(self._lags))

    def _publish_safely(self, lag_s: float = 0.0) -> None:
        try:
            self.publish(lag_s)
        except Exception:  # telemetry must never take the worker down
            logger.exception("publishing pool metrics failed")

    async def _run(self) -> None:
        while True:
            expected = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            self._publish_safely(time.monotonic() - expected)

    def start(self) -> None:
        self._publish_safely()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="pool-telemetry")

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        self._task = None

    def exposition(self) -> bytes:
        """The text `/metrics` serves: every live worker's series, or this worker's alone."""
        if not multiprocess_enabled():
            return generate_latest(self.registry)
        forget_dead_workers(os.environ[MULTIPROC_ENV])
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)


_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w*?_(\d+)\.db$")


def forget_dead_workers(directory: str) -> list[int]:
    """Drop the live gauges of every worker whose process is gone; return their pids.

    A SIGKILLed worker never cleans up after itself, and without this its last
    pool figures would be served as if it still held those connections.
    """
    dead = set()
    for name in os.listdir(directory):
        match = _LIVE_GAUGE_FILE.match(name)
        if match and not _alive(int(match[1])):
            dead.add(int(match[1]))
    for pid in dead:
        multiprocess.mark_process_dead(pid, directory)
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process has that pid now: not gone, as far as we may tell
        return True
    return True


def _help(name: str) -> str:
    if name == "overflow":
        return "connections open beyond SQLAlchemy QueuePool's pool_size; 0 for other pools"
    if name in MS_STATS:
        return f"psycopg_pool get_stats() {name}, in seconds, since the pool opened"
    return f"psycopg_pool get_stats() {name}" + ("" if name in POOL_GAUGES else ", since the pool opened")
