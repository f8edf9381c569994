"""An app poolcheck did not write: Starlette, two psycopg pools per worker, no application_name.

    DATABASE_URL=... gunicorn -k uvicorn_worker.UvicornWorker -w 2 --chdir tests/own_app app:app

Each pool opens all its connections at start (min_size = max_size), so every
worker holds exactly LOOKUP_POOL_SIZE + REPORT_POOL_SIZE connections: the
figure the report must find per worker process.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

LOOKUP_POOL_SIZE = int(os.environ.get("LOOKUP_POOL_SIZE", "2"))
REPORT_POOL_SIZE = int(os.environ.get("REPORT_POOL_SIZE", "3"))


def _pool(size: int) -> AsyncConnectionPool:
    return AsyncConnectionPool(os.environ["DATABASE_URL"], min_size=size, max_size=size, open=False)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.lookups = _pool(LOOKUP_POOL_SIZE)
    app.state.reports = _pool(REPORT_POOL_SIZE)
    for pool in (app.state.lookups, app.state.reports):
        await pool.open(wait=True, timeout=30)
    try:
        yield
    finally:
        for pool in (app.state.lookups, app.state.reports):
            await pool.close()


async def health(request: Request) -> JSONResponse:
    return JSONResponse({"pid": os.getpid()})


async def lookup(request: Request) -> JSONResponse:
    async with request.app.state.lookups.connection() as conn:
        cursor = await conn.execute("SELECT 42")
        (value,) = await cursor.fetchone()
    return JSONResponse({"value": value})


async def report(request: Request) -> JSONResponse:
    async with request.app.state.reports.connection() as conn:
        await conn.execute("SELECT pg_sleep(0.05)")
    return JSONResponse({"done": True})


app = Starlette(
    routes=[Route("/health", health), Route("/lookup", lookup), Route("/report", report)],
    lifespan=lifespan,
)
