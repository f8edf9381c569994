"""An app unlike the sample: three pools per worker from three libraries, no application_name, no /metrics.

    DATABASE_URL=... gunicorn -k uvicorn_worker.UvicornWorker -w 2 --chdir tests/own_app mixed_app:app

Per worker a psycopg `ConnectionPool` (used from a thread), an
`AsyncConnectionPool` and an asyncpg pool, each opened at start-up with all
its connections (min_size = max_size): every worker holds exactly
SYNC_POOL_SIZE + ASYNC_POOL_SIZE + ASYNCPG_POOL_SIZE connections.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SYNC_POOL_SIZE = int(os.environ.get("SYNC_POOL_SIZE", "2"))
ASYNC_POOL_SIZE = int(os.environ.get("ASYNC_POOL_SIZE", "2"))
ASYNCPG_POOL_SIZE = int(os.environ.get("ASYNCPG_POOL_SIZE", "3"))


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    url = os.environ["DATABASE_URL"]
    app.state.sync = ConnectionPool(url, min_size=SYNC_POOL_SIZE, max_size=SYNC_POOL_SIZE, open=False)
    app.state.aio = AsyncConnectionPool(url, min_size=ASYNC_POOL_SIZE, max_size=ASYNC_POOL_SIZE, open=False)
    await run_in_threadpool(app.state.sync.open, wait=True, timeout=30)
    await app.state.aio.open(wait=True, timeout=30)
    app.state.apg = await asyncpg.create_pool(url, min_size=ASYNCPG_POOL_SIZE, max_size=ASYNCPG_POOL_SIZE)
    try:
        yield
    finally:
        await app.state.apg.close()
        await app.state.aio.close()
        await run_in_threadpool(app.state.sync.close)


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


def _sync_lookup(pool: ConnectionPool) -> int:
    with pool.connection() as conn:
        (value,) = conn.execute("SELECT 42").fetchone()  # type: ignore[misc]
    return value


async def lookup(request: Request) -> JSONResponse:
    return JSONResponse({"value": await run_in_threadpool(_sync_lookup, request.app.state.sync)})


async def report(request: Request) -> JSONResponse:
    async with request.app.state.aio.connection() as conn:
        await conn.execute("SELECT pg_sleep(0.03)")
    async with request.app.state.apg.acquire() as conn:
        await conn.fetchval("SELECT pg_sleep(0.02)")
    return JSONResponse({"done": True})


app = Starlette(
    routes=[Route("/health", health), Route("/lookup", lookup), Route("/report", report)],
    lifespan=lifespan,
)
