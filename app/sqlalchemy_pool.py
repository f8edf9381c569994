"""POOL_KIND=sqlalchemy: a SQLAlchemy AsyncEngine (QueuePool, psycopg driver) behind the calls the app makes of its pools.

QueuePool keeps at most `pool_size` connections and opens up to
`max_overflow` more when a request finds none free; an overflow connection is
closed as soon as it is returned while the base pool is full. So a worker may
hold `pool_size + max_overflow` connections at once (POOL_MAX_SIZE here, with
POOL_MAX_OVERFLOW of them overflow), and a burst above `pool_size` opens and
closes connections on every burst. Connections are made on the request path,
inside `engine.connect()`; none is opened before the first request.

Settings are sent once per connection, when it is made, and
`application_name` (`<app>:<pid>`) lets the collector attribute each
connection to its worker as for the other pool kinds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from .db import Statement, application_name, configure_sql, prepare_kwargs
from .errors import DB_CONNECTION_CLOSED, POOL_TIMEOUT, RefusalTracker, classify, error_response
from .settings import Settings

logger = logging.getLogger("poolcheck.app.sqlalchemy_pool")

_COUNTERS = ("requests_num", "requests_queued", "requests_wait_ms", "requests_errors", "connections_num",
             "connections_errors", "connections_lost", "usage_ms")


class SqlalchemyPool:
    """An AsyncEngine with psycopg_pool's `connection()`, `get_stats()`, `min_size` and `max_size`.

    `get_stats()` answers in psycopg_pool's names, plus `overflow`: the
    connections open beyond `pool_size` now (QueuePool's own `overflow()` is
    negative while fewer than `pool_size` are open).
    """

    def __init__(self, settings: Settings, tracker: RefusalTracker) -> None:
        self.settings = settings
        self.tracker = tracker
        self.min_size = 0  # QueuePool has no minimum: it opens connections on demand
        self.max_size = settings.POOL_MAX_SIZE
        self.max_overflow = settings.POOL_MAX_OVERFLOW
        self.pool_size = settings.POOL_MAX_SIZE - settings.POOL_MAX_OVERFLOW
        self.engine: AsyncEngine | None = None
        self._waiting = 0
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def open(self) -> None:
        """Create the engine; its first connection is made by the first request."""
        self.engine = create_async_engine(
            "postgresql+psycopg://",
            async_creator=self._connect,
            pool_size=self.pool_size,
            max_overflow=self.max_overflow,
            pool_timeout=self.settings.POOL_TIMEOUT,
            pool_recycle=self.settings.POOL_MAX_LIFETIME,
            pool_pre_ping=self.settings.POOL_CHECK,
        )
        event.listen(self.engine.sync_engine, "invalidate", self._lost)

    async def _connect(self) -> psycopg.AsyncConnection:
        self._counts["connections_num"] += 1
        try:
            conn = await psycopg.AsyncConnection.connect(
                self.settings.DATABASE_URL, application_name=application_name(self.settings), autocommit=True,
                **prepare_kwargs(self.settings),
            )
        except psycopg.OperationalError as exc:
            self._counts["connections_errors"] += 1
            self.tracker.record(exc)
            raise
        # Set once, outside any transaction, so the rollback SQLAlchemy does when
        # a connection is returned cannot undo it; then the driver's default mode.
        await conn.execute(configure_sql(self.settings))
        await conn.set_autocommit(False)
        return conn

    def _lost(self, dbapi_connection: Any, record: Any, exception: BaseException | None) -> None:
        self._counts["connections_lost"] += 1

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[AsyncConnection]:
        """A connection of the engine, returned to its pool at the end of the block.

        `timeout` (say a health check's) may only shorten the engine's pool_timeout.
        """
        assert self.engine is not None, "the engine is not created"
        pool = self.engine.pool
        self._counts["requests_num"] += 1
        # QueuePool makes a request wait only when no connection is free and the overflow is used up.
        self._counts["requests_queued"] += pool.checkedin() == 0 and pool.overflow() >= self.max_overflow  # type: ignore[attr-defined]
        self._waiting += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout):
                conn = await self.engine.connect()
        except (sa_exc.TimeoutError, TimeoutError):
            self._counts["requests_errors"] += 1
            raise
        finally:
            self._waiting -= 1
            self._counts["requests_wait_ms"] += int((time.monotonic() - started) * 1000)
        checked_out = time.monotonic()
        try:
            yield conn
        finally:
            self._counts["usage_ms"] += int((time.monotonic() - checked_out) * 1000)
            await conn.close()

    def get_stats(self) -> dict[str, int]:
        """psycopg_pool's get_stats() keys from QueuePool's figures and this wrapper's counts, and `overflow`."""
        pool = self.engine.pool if self.engine else None
        idle = pool.checkedin() if pool else 0  # type: ignore[attr-defined]
        busy = pool.checkedout() if pool else 0  # type: ignore[attr-defined]
        overflow = pool.overflow() if pool else -self.pool_size  # type: ignore[attr-defined]
        return {"pool_min": self.min_size, "pool_max": self.max_size, "pool_size": idle + busy, "pool_available": idle,
                "requests_waiting": self._waiting, "overflow": max(overflow, 0), **self._counts}

    async def close(self) -> None:
        if self.engine is not None:
            await self.engine.dispose()


class SqlalchemySession:
    """The Session protocol of app/db.py on a SQLAlchemy AsyncConnection, with the driver's own SQL."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def _execute(self, query: str, params: Sequence[Any] | None) -> tuple[Any, ...] | None:
        # Without parameters the driver must not read `%` as a placeholder.
        result = await (self._conn.exec_driver_sql(query, tuple(params)) if params else self._conn.exec_driver_sql(query))
        row = result.fetchone() if result.returns_rows else None
        return tuple(row) if row is not None else None

    async def fetch_one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        # The read begins a transaction, as SQLAlchemy does; returning the connection rolls it back.
        return await self._execute(query, params)

    async def in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None:
        row = None
        async with self._conn.begin():
            for query, params in statements:
                row = await self._execute(query, params)
        return row


async def sqlalchemy_session(request: Request) -> AsyncIterator[SqlalchemySession]:
    async with request.app.state.pool.connection() as conn:
        yield SqlalchemySession(conn)


def classify_sqlalchemy(exc: BaseException) -> str:
    """The app's error class of a SQLAlchemy failure: the pool's timeout, else the driver's error underneath."""
    if isinstance(exc, (sa_exc.TimeoutError, TimeoutError)):
        return POOL_TIMEOUT
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return DB_CONNECTION_CLOSED
        if exc.orig is not None:
            return classify(exc.orig)
    return classify(exc)


def install_sqlalchemy_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, exc, classify_sqlalchemy(exc))

    for kind in (sa_exc.SQLAlchemyError, TimeoutError):
        app.add_exception_handler(kind, handle)
