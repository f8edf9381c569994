"""Liveness with a database round trip, and this worker's pool figures."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ..asyncpg_pool import classify_asyncpg
from ..errors import classify
from ..sqlalchemy_pool import classify_sqlalchemy

router = APIRouter(tags=["health"])

_HEALTH_TIMEOUT = 2.0  # seconds: a health check must answer quickly or fail
_CLASSIFIERS = {"asyncpg": classify_asyncpg, "sqlalchemy": classify_sqlalchemy}


async def _round_trip(request: Request) -> None:
    pool = request.app.state.pool
    if request.app.state.settings.POOL_KIND == "sqlalchemy":  # SQLAlchemy takes the driver's SQL by this name
        async with pool.connection(timeout=_HEALTH_TIMEOUT) as conn:
            await conn.exec_driver_sql("SELECT 1")
        return
    if request.app.state.settings.POOL_KIND != "sync":  # async and asyncpg: the same calls
        async with pool.connection(timeout=_HEALTH_TIMEOUT) as conn:
            await conn.execute("SELECT 1")
        return
    from starlette.concurrency import run_in_threadpool

    def check() -> None:
        with pool.connection(timeout=_HEALTH_TIMEOUT) as conn:
            conn.execute("SELECT 1")

    await run_in_threadpool(check)


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    try:
        await _round_trip(request)
    except Exception as exc:  # any failure means unhealthy; say which kind
        error = _CLASSIFIERS.get(request.app.state.settings.POOL_KIND, classify)(exc)
        body = {"status": "unhealthy", "pid": os.getpid(), "error": error, "detail": str(exc).strip()[:200]}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"status": "ok", "pid": os.getpid()})


@router.get("/pool/stats")
async def pool_stats(request: Request) -> dict:
    """psycopg_pool's own gauges and counters for the worker that answers."""
    pool = request.app.state.pool
    settings = request.app.state.settings
    return {
        "pid": os.getpid(),
        "kind": settings.POOL_KIND,
        "min_size": pool.min_size,
        "max_size": pool.max_size,
        "refused_connects": request.app.state.refusals.count,
        "stats": pool.get_stats(),
    }
