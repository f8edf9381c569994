"""Each worker's pool telemetry as Prometheus gauges: psycopg_pool's stats (or their equivalents) and event-loop lag.

gunicorn runs one pool per worker process, so a scrape that reaches one
worker must still show them all. prometheus_client's multiprocess mode does
that: every worker writes its values to files in PROMETHEUS_MULTIPROC_DIR and
`/metrics` merges them, one series per worker `pid` ("liveall": a worker's
series go away when gunicorn's `child_exit` hook marks it dead). Without that
variable, `/metrics` shows the answering worker only.

The values are refreshed by a small periodic task in each worker, which also
measures how late its own timer fires: the event loop's lag.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, multiprocess

logger = logging.getLogger("poolcheck.app.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
POOL_PREFIX = "psycopg_pool_"
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
        self._gauges = {name: self._gauge(POOL_PREFIX + name, _help(name)) for name in POOL_STATS}
        self._lag = self._gauge(LOOP_LAG, f"largest event-loop lag of the last {lag_window:g} s of {interval:g} s timer ticks")

    def _gauge(self, name: str, documentation: str) -> Gauge:
        return Gauge(name, documentation, registry=self.registry, multiprocess_mode="liveall")

    def publish(self, lag_s: float = 0.0) -> None:
        stats = self.pool.get_stats()
        for name, gauge in self._gauges.items():
            gauge.set(stats.get(name, 0))
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
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return generate_latest(merged)


def _help(name: str) -> str:
    kind = "gauge" if name in POOL_GAUGES else "counter since the pool opened"
    if name == "overflow":
        return f"connections open beyond SQLAlchemy QueuePool's pool_size; 0 for other pools ({kind})"
    return f"psycopg_pool get_stats() {name} ({kind})"
