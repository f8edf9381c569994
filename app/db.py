"""One connection pool per worker process, and the sessions handed to routes.

Connections are set up once, in the pool's `configure` callback; requests
never change connection settings (a setting changed per request outlives the
request and leaks into the next user of the connection).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any, Protocol

import psycopg
from psycopg import AsyncConnection, Connection
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from starlette.concurrency import run_in_threadpool

from .errors import RefusalTracker
from .settings import Settings

logger = logging.getLogger("poolcheck.app.db")

Statement = tuple[str, Sequence[Any] | None]

_SCHEMA_LOCK_ID = 7_271_003  # any constant: serialises CREATE TABLE across workers
_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id integer PRIMARY KEY,
    name text NOT NULL
);
INSERT INTO items (id, name)
    SELECT n, 'item ' || n FROM generate_series(1, 100) AS n
    ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS writes (
    id bigserial PRIMARY KEY,
    worker_pid integer NOT NULL,
    note text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def application_name(settings: Settings, pid: int | None = None) -> str:
    """`<app>:<pid>`: lets the collector attribute each connection to its worker."""
    return f"{settings.APP_NAME}:{os.getpid() if pid is None else pid}"


def _connection_kwargs(settings: Settings) -> dict[str, Any]:
    return {
        "application_name": application_name(settings),
        # Reads need no transaction; writes open one explicitly.
        "autocommit": True,
        **prepare_kwargs(settings),
    }


def prepare_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg's connect() keywords for POOL_PREPARE: None never prepares; else psycopg's default (5 runs)."""
    return {} if settings.POOL_PREPARE else {"prepare_threshold": None}


def _tracking(base: type, tracker: RefusalTracker) -> type:
    """A connection class that remembers why the server refused it.

    The pool connects in the background; without this a request only sees
    PoolTimeout and never learns that the server was out of slots.
    """

    if issubclass(base, AsyncConnection):

        class _AsyncTracked(base):  # type: ignore[misc, valid-type]
            @classmethod
            async def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    return await super().connect(*args, **kwargs)
                except psycopg.OperationalError as exc:
                    tracker.record(exc)
                    raise

        return _AsyncTracked

    class _Tracked(base):  # type: ignore[misc, valid-type]
        @classmethod
        def connect(cls, *args: Any, **kwargs: Any) -> Any:
            try:
                return super().connect(*args, **kwargs)
            except psycopg.OperationalError as exc:
                tracker.record(exc)
                raise

    return _Tracked


def configure_sql(settings: Settings) -> str:
    return f"SET statement_timeout = {int(settings.STATEMENT_TIMEOUT_MS)}; SET TIME ZONE 'UTC'"


def _pool_arguments(settings: Settings) -> dict[str, Any]:
    return {
        "conninfo": settings.DATABASE_URL,
        "kwargs": _connection_kwargs(settings),
        "min_size": settings.POOL_MIN_SIZE,
        "max_size": settings.POOL_MAX_SIZE,
        "max_idle": settings.POOL_MAX_IDLE,
        "max_lifetime": settings.POOL_MAX_LIFETIME,
        "timeout": settings.POOL_TIMEOUT,
        "max_waiting": settings.POOL_MAX_WAITING,
        "name": application_name(settings),
        "open": False,
    }


def make_async_pool(settings: Settings, tracker: RefusalTracker) -> AsyncConnectionPool:
    statement = configure_sql(settings)

    async def configure(conn: AsyncConnection) -> None:
        await conn.execute(statement)

    return AsyncConnectionPool(
        connection_class=_tracking(AsyncConnection, tracker),
        configure=configure,
        check=AsyncConnectionPool.check_connection if settings.POOL_CHECK else None,
        **_pool_arguments(settings),
    )


def make_sync_pool(settings: Settings, tracker: RefusalTracker) -> ConnectionPool:
    statement = configure_sql(settings)

    def configure(conn: Connection) -> None:
        conn.execute(statement)

    return ConnectionPool(
        connection_class=_tracking(Connection, tracker),
        configure=configure,
        check=ConnectionPool.check_connection if settings.POOL_CHECK else None,
        **_pool_arguments(settings),
    )


class Session(Protocol):
    """What a route may do with the connection of its request."""

    async def fetch_one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None: ...

    async def in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None: ...


class AsyncSession:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def fetch_one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        cursor = await self._conn.execute(query, params)
        return await cursor.fetchone()

    async def in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None:
        row = None
        async with self._conn.transaction():
            for query, params in statements:
                cursor = await self._conn.execute(query, params)
                row = await cursor.fetchone() if cursor.description else None
        return row


class SyncSession:
    """Runs each blocking call in the thread pool so the event loop stays free."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _fetch_one(self, query: str, params: Sequence[Any] | None) -> tuple[Any, ...] | None:
        return self._conn.execute(query, params).fetchone()

    def _in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None:
        row = None
        with self._conn.transaction():
            for query, params in statements:
                cursor = self._conn.execute(query, params)
                row = cursor.fetchone() if cursor.description else None
        return row

    async def fetch_one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        return await run_in_threadpool(self._fetch_one, query, params)

    async def in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None:
        return await run_in_threadpool(self._in_transaction, statements)


async def create_schema(session: Session) -> None:
    statements: list[Statement] = [("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_ID,))]
    statements += [(part, None) for part in _SCHEMA.split(";") if part.strip()]
    await session.in_transaction(statements)
