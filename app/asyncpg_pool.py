"""POOL_KIND=asyncpg: an asyncpg pool behind the calls the app makes of its psycopg pools.

asyncpg connects on the request path (inside `acquire()`), closes an unused
connection after `max_inactive_connection_lifetime` (POOL_MAX_IDLE here) with a
timer of the event loop, and resets a connection with `RESET ALL` when it is
released. Settings are therefore sent as startup parameters, which `RESET ALL`
returns to, and `application_name` (`<app>:<pid>`) lets the collector
attribute each connection to its worker as for the psycopg pools.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from .db import Statement, application_name
from .errors import DB_CONNECTION_CLOSED, DB_TOO_MANY_CONNECTIONS, POOL_TIMEOUT, classify, error_response
from .settings import Settings

logger = logging.getLogger("poolcheck.app.asyncpg_pool")

_PLACEHOLDER = re.compile(r"%s")
_CLOSED = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.exceptions.AdminShutdownError,
           asyncpg.exceptions.IdleSessionTimeoutError, ConnectionError)


def numbered(query: str) -> str:
    """psycopg's `%s` placeholders as asyncpg's `$1, $2, ...`."""
    counter = iter(range(1, query.count("%s") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", query)


def connect_arguments(settings: Settings) -> dict[str, Any]:
    """asyncpg's connect() keywords from the libpq DSN (URL or key=value) the app is given."""
    parts = psycopg.conninfo.conninfo_to_dict(settings.DATABASE_URL)
    arguments = {"host": parts.get("host"), "port": int(parts.get("port", 5432)), "user": parts.get("user"),
                 "password": parts.get("password"), "database": parts.get("dbname")}
    return {name: value for name, value in arguments.items() if value is not None}


class AsyncpgPool:
    """asyncpg.Pool with psycopg_pool's `connection()`, `get_stats()`, `min_size` and `max_size`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.min_size = settings.POOL_MIN_SIZE
        self.max_size = settings.POOL_MAX_SIZE
        self._pool: asyncpg.Pool | None = None
        self._waiting = 0
        self._counts = {"requests_num": 0, "requests_queued": 0, "requests_errors": 0}

    async def open(self, *, timeout: float) -> None:
        self._pool = await asyncio.wait_for(
            asyncpg.create_pool(
                **connect_arguments(self.settings),
                min_size=self.min_size,
                max_size=self.max_size,
                max_inactive_connection_lifetime=self.settings.POOL_MAX_IDLE,
                # 0: no named prepared statements, which transaction pooling would hand to another server connection.
                statement_cache_size=100 if self.settings.POOL_PREPARE else 0,
                server_settings={
                    "application_name": application_name(self.settings),
                    "statement_timeout": str(int(self.settings.STATEMENT_TIMEOUT_MS)),
                    "TimeZone": "UTC",
                },
            ),
            timeout,
        )

    @asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        assert self._pool is not None, "the pool is not open"
        self._counts["requests_num"] += 1
        self._counts["requests_queued"] += self._pool.get_idle_size() == 0
        self._waiting += 1
        try:
            conn = await self._pool.acquire(timeout=timeout or self.settings.POOL_TIMEOUT)
        except TimeoutError:
            self._counts["requests_errors"] += 1
            raise
        finally:
            self._waiting -= 1
        try:
            yield conn
        finally:
            await self._pool.release(conn)

    def get_stats(self) -> dict[str, int]:
        """The psycopg_pool get_stats() keys asyncpg can answer."""
        size = self._pool.get_size() if self._pool else 0
        idle = self._pool.get_idle_size() if self._pool else 0
        return {"pool_min": self.min_size, "pool_max": self.max_size, "pool_size": size, "pool_available": idle,
                "requests_waiting": self._waiting, **self._counts}

    async def close(self, *, timeout: float = 5.0) -> None:
        if self._pool is None:
            return
        try:
            await asyncio.wait_for(self._pool.close(), timeout)
        except TimeoutError:
            # Requests still hold connections after the grace period: cut them.
            self._pool.terminate()


class AsyncpgSession:
    """The Session protocol of app/db.py on an asyncpg connection."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def fetch_one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...] | None:
        row = await self._conn.fetchrow(numbered(query), *(params or ()))
        return tuple(row) if row is not None else None

    async def in_transaction(self, statements: Sequence[Statement]) -> tuple[Any, ...] | None:
        row = None
        async with self._conn.transaction():
            for query, params in statements:
                found = await self._conn.fetchrow(numbered(query), *(params or ()))
                row = tuple(found) if found is not None else None
        return row


async def asyncpg_session(request: Request) -> AsyncIterator[AsyncpgSession]:
    async with request.app.state.pool.connection() as conn:
        yield AsyncpgSession(conn)


def classify_asyncpg(exc: BaseException) -> str:
    """The app's error class of an asyncpg failure; messages are the server's, as for psycopg."""
    if isinstance(exc, TimeoutError):
        return POOL_TIMEOUT
    if isinstance(exc, asyncpg.exceptions.TooManyConnectionsError):
        return DB_TOO_MANY_CONNECTIONS
    if isinstance(exc, _CLOSED):
        return DB_CONNECTION_CLOSED
    return classify(exc)


def install_asyncpg_error_handlers(app: FastAPI) -> None:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        return error_response(request, exc, classify_asyncpg(exc))

    for kind in (asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ConnectionError):
        app.add_exception_handler(kind, handle)
