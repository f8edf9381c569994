"""The sample system under test: FastAPI with one pool per worker (psycopg, asyncpg or a SQLAlchemy engine).

Run it as gunicorn's factory: `gunicorn -c app/gunicorn.conf.py 'app.main:create_app()'`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from . import antipatterns, db
from .asyncpg_pool import AsyncpgPool, AsyncpgSession, asyncpg_session, connect_arguments, install_asyncpg_error_handlers
from .deps import async_session, sync_session
from .errors import RefusalTracker, install_error_handlers
from .metrics import PoolTelemetry
from .routes import health, items, metrics
from .settings import Settings
from .sqlalchemy_pool import SqlalchemyPool, SqlalchemySession, install_sqlalchemy_error_handlers, sqlalchemy_session

logger = logging.getLogger("poolcheck.app")


async def _open_async(app: FastAPI, settings: Settings) -> None:
    pool = db.make_async_pool(settings, app.state.refusals)
    # Opened here, in the worker's own event loop: a pool opened in another
    # loop (say asyncio.run at import) never hands out a connection.
    await pool.open(wait=True, timeout=settings.POOL_TIMEOUT * 2)
    app.state.pool = pool
    async with pool.connection() as conn:
        await db.create_schema(db.AsyncSession(conn))


async def _open_sync(app: FastAPI, settings: Settings) -> None:
    pool = db.make_sync_pool(settings, app.state.refusals)
    await run_in_threadpool(pool.open, wait=True, timeout=settings.POOL_TIMEOUT * 2)
    app.state.pool = pool

    conn = await run_in_threadpool(pool.getconn)
    try:
        await db.create_schema(db.SyncSession(conn))
    finally:
        await run_in_threadpool(pool.putconn, conn)


async def _open_asyncpg(app: FastAPI, settings: Settings) -> None:
    pool = AsyncpgPool(settings)
    await pool.open(timeout=settings.POOL_TIMEOUT * 2)
    app.state.pool = pool
    # Set-up, not load: a connection of its own without the statement cache, so that workers starting
    # together behind PgBouncer's transaction pooling cannot trip over each other's prepared statements.
    conn = await asyncpg.connect(**connect_arguments(settings), statement_cache_size=0)
    try:
        await db.create_schema(AsyncpgSession(conn))
    finally:
        await conn.close()


async def _open_sqlalchemy(app: FastAPI, settings: Settings) -> None:
    pool = SqlalchemyPool(settings, app.state.refusals)
    pool.open()
    app.state.pool = pool
    # The first connection, and the server's answer, come here rather than at the first request.
    async with pool.connection(timeout=settings.POOL_TIMEOUT * 2) as conn:
        await db.create_schema(SqlalchemySession(conn))


_OPENERS = {"async": _open_async, "sync": _open_sync, "asyncpg": _open_asyncpg, "sqlalchemy": _open_sqlalchemy}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    if getattr(app.state, "pool", None) is None:  # an anti-pattern may have opened one (app/antipatterns.py)
        await _OPENERS[settings.POOL_KIND](app, settings)
    pool = app.state.pool
    logger.info("pool %s open: min %d max %d", db.application_name(settings), pool.min_size, pool.max_size)
    app.state.telemetry = PoolTelemetry(app.state.pool)
    app.state.telemetry.start()
    try:
        yield
    finally:
        await app.state.telemetry.stop()
        # Closed at worker exit: otherwise its connections stay on the server
        # until the server notices the dead socket.
        if not antipatterns.closes_pool_at_exit(settings):
            logger.warning("pool %s left open at exit (APP_PATTERN=%s)", db.application_name(settings), settings.APP_PATTERN)
        else:
            await (run_in_threadpool(pool.close) if settings.POOL_KIND == "sync" else pool.close())
            logger.info("pool %s closed", db.application_name(settings))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    if not logging.getLogger().handlers:
        # Under gunicorn only its own loggers are set up; ours go to its error log.
        logging.basicConfig(level=logging.INFO, format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s")
    app = FastAPI(title="poolcheck sample app", lifespan=lifespan)
    app.state.settings = settings
    app.state.refusals = RefusalTracker(window=max(settings.POOL_TIMEOUT * 2, 10.0))
    if settings.POOL_KIND == "sync":
        # Routes declare the async dependency; a sync pool needs the sync one.
        app.dependency_overrides[async_session] = sync_session
    if settings.POOL_KIND == "asyncpg":
        app.dependency_overrides[async_session] = asyncpg_session
        install_asyncpg_error_handlers(app)
    if settings.POOL_KIND == "sqlalchemy":
        app.dependency_overrides[async_session] = sqlalchemy_session
        install_sqlalchemy_error_handlers(app)
    install_error_handlers(app)
    antipatterns.install(app, settings)  # "default": nothing; before the app's routes, which it may shadow
    app.include_router(items.router)
    app.include_router(health.router)
    app.include_router(metrics.router)
    return app
