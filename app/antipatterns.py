"""DELIBERATE ANTI-PATTERNS. Do not copy any of this into an application.

Each function here reproduces a known way of misusing a connection pool, so
that `poolcheck scenario NAME` can show the failure it causes in production
and prove that the harness detects it. They are switched on only by the
APP_PATTERN setting, which the harness sets for the faulty half of a scenario;
the default, "default", installs none of them, and the app's own code
(app/deps.py, app/db.py, app/main.py) is the fix of every one.

| APP_PATTERN        | the mistake                                                     | the fix                                         |
|--------------------|-----------------------------------------------------------------|-------------------------------------------------|
| use-after-return   | a dependency leaves `pool.connection()` before the route runs   | yield inside the block                          |
|                    | (settings already in `configure`)                               |                                                 |
| autocommit-after-  | the same, and each request sets `conn.autocommit` on the        | yield inside the block (that change alone       |
| return             | connection it gave back (the field report's views)              | removes the errors); settings in `configure`    |
| autocommit-per-    | NOT an error by itself: the per-request `conn.autocommit` kept, | settings in `configure`: a per-request setting  |
| request            | but inside the block: the single change that removes the errors | outlives the request on a pooled connection     |
| pool-before-fork   | a pool opened while the app is created (gunicorn --preload:     | open and close the pool in the lifespan         |
|                    | the master, before the fork), never closed; worker pools not   |                                                 |
|                    | closed at exit either                                          |                                                 |
| pool-in-other-loop | an AsyncConnectionPool opened with asyncio.run at creation     | open it in the lifespan with wait=True          |
| blocking-sleep     | time.sleep in an async handler                                  | await the wait (asyncio.sleep, run_in_executor) |
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

from fastapi import APIRouter, FastAPI, HTTPException, Query, Request
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from . import db
from .deps import SettingsDep, async_session
from .errors import RefusalTracker
from .settings import APP_PATTERNS, Settings

logger = logging.getLogger("poolcheck.app.antipatterns")

DEFAULT = "default"
USE_AFTER_RETURN = "use-after-return"
AUTOCOMMIT_AFTER_RETURN = "autocommit-after-return"
AUTOCOMMIT_PER_REQUEST = "autocommit-per-request"
POOL_BEFORE_FORK = "pool-before-fork"
POOL_IN_OTHER_LOOP = "pool-in-other-loop"
BLOCKING_SLEEP = "blocking-sleep"
PATTERNS = APP_PATTERNS


async def _session_after_return(request: Request) -> AsyncIterator[db.Session]:
    """WRONG: the connection goes back to the pool before the route uses it."""
    async with request.app.state.pool.connection() as conn:
        pass
    # From here the pool may hand the same connection to another request, or
    # close it because it reached max_lifetime when it came back: "the connection is closed".
    yield db.AsyncSession(conn)


def _sync_session_after_return(request: Request) -> Iterator[db.Session]:
    """WRONG, on the sync ConnectionPool: settings in `configure` alone, the connection still given back before use."""
    with request.app.state.pool.connection() as conn:
        pass
    yield db.SyncSession(conn)


async def _async_autocommit_after_return(request: Request) -> AsyncIterator[db.Session]:
    """WRONG twice: given back before use, then switched to autocommit per request, as the field report's views did.

    On a connection another request is using: "can't change 'autocommit' now";
    on one max_lifetime closed when it came back: the same, in status UNKNOWN,
    or "the connection is closed" at the query.
    """
    async with request.app.state.pool.connection() as conn:
        pass
    await conn.set_autocommit(True)
    yield db.AsyncSession(conn)


def _sync_autocommit_after_return(request: Request) -> Iterator[db.Session]:
    """WRONG twice, on the sync ConnectionPool the field report's team had."""
    with request.app.state.pool.connection() as conn:
        pass
    conn.autocommit = True
    yield db.SyncSession(conn)


async def _async_autocommit_per_request(request: Request) -> AsyncIterator[db.Session]:
    """The per-request change, inside the block: no error, but the setting outlives the request."""
    async with request.app.state.pool.connection() as conn:
        await conn.set_autocommit(True)
        yield db.AsyncSession(conn)


def _sync_autocommit_per_request(request: Request) -> Iterator[db.Session]:
    with request.app.state.pool.connection() as conn:
        conn.autocommit = True
        yield db.SyncSession(conn)


_SESSIONS = {
    (USE_AFTER_RETURN, "async"): _session_after_return,
    (USE_AFTER_RETURN, "sync"): _sync_session_after_return,
    (AUTOCOMMIT_AFTER_RETURN, "async"): _async_autocommit_after_return,
    (AUTOCOMMIT_AFTER_RETURN, "sync"): _sync_autocommit_after_return,
    (AUTOCOMMIT_PER_REQUEST, "async"): _async_autocommit_per_request,
    (AUTOCOMMIT_PER_REQUEST, "sync"): _sync_autocommit_per_request,
}


def _pool_before_fork(settings: Settings) -> ConnectionPool:
    """WRONG: a pool opened while the app is created, and never closed.

    With gunicorn --preload the app is created in the master, before the fork:
    the master holds these connections for its whole life and every worker,
    recycled or not, inherits their sockets; the workers open their own pools
    on top of them, so the server sees more than workers x max_size.
    """
    pool = ConnectionPool(
        settings.DATABASE_URL,
        kwargs={"application_name": db.application_name(settings), "autocommit": True},
        min_size=settings.POOL_MAX_SIZE,
        max_size=settings.POOL_MAX_SIZE,
        name=f"before-fork:{db.application_name(settings)}",
        open=False,
    )
    pool.open(wait=True, timeout=settings.POOL_TIMEOUT * 2)
    with pool.connection() as conn:
        conn.execute("SELECT 1")  # a start-up check that "warms" the pool
    return pool


def _pool_in_other_loop(settings: Settings, refusals: RefusalTracker) -> AsyncConnectionPool:
    """WRONG: opened in a throwaway event loop, before the worker's own loop runs.

    The pool's workers and its waiting machinery die with that loop: the
    connections opened here stay on the server, idle, but the worker's loop is
    never handed one, nor does the pool open a new one. Requests wait until
    PoolTimeout, with pool_size stuck and pool_available at 0 (app/main.py
    says the same of a pool opened in another loop).
    """
    pool = db.make_async_pool(settings, refusals)

    async def open_and_create_schema() -> None:
        await pool.open(wait=True, timeout=settings.POOL_TIMEOUT * 2)
        async with pool.connection() as conn:
            await db.create_schema(db.AsyncSession(conn))

    asyncio.run(open_and_create_schema())
    return pool


_blocking = APIRouter(prefix="/items", tags=["anti-patterns"])


@_blocking.get("/hold")
async def _blocking_hold(request: Request, settings: SettingsDep, ms: int = Query(100, ge=0, le=60_000)) -> dict:
    """WRONG: time.sleep in an async handler stops the worker's whole event loop.

    The query is done and its connection back in the pool; then a blocking
    call (think of a synchronous HTTP client, or CPU work) holds the loop: no
    other request of this worker runs meanwhile, and neither do the pool's
    timers, so the connection just returned stays open past max_idle.
    """
    if ms > settings.HOLD_MAX_MS:
        raise HTTPException(status_code=422, detail=f"ms must be at most {settings.HOLD_MAX_MS}")
    async with request.app.state.pool.connection() as conn:
        await conn.execute("SELECT 1")
    time.sleep(ms / 1000.0)
    return {"held_ms": ms}


def install(app: FastAPI, settings: Settings) -> None:
    """Apply APP_PATTERN to an app being created, before its own routes; "default" changes nothing."""
    pattern = settings.APP_PATTERN
    if pattern == DEFAULT:
        return
    logger.warning("APP_PATTERN=%s: a deliberate anti-pattern for a failure scenario", pattern)
    if (pattern, settings.POOL_KIND) in _SESSIONS:
        # Routes declare async_session (main.py maps it to sync_session for a sync pool): replaced for both kinds.
        app.dependency_overrides[async_session] = _SESSIONS[pattern, settings.POOL_KIND]
    elif pattern == POOL_BEFORE_FORK:
        app.state.pool_before_fork = _pool_before_fork(settings)
    elif pattern == POOL_IN_OTHER_LOOP:
        app.state.pool = _pool_in_other_loop(settings, app.state.refusals)
    elif pattern == BLOCKING_SLEEP:
        app.include_router(_blocking)  # routes match in order: this /items/hold wins


def closes_pool_at_exit(settings: Settings) -> bool:
    """False for the patterns that leave their pools open when the worker exits."""
    return settings.APP_PATTERN not in (POOL_BEFORE_FORK, POOL_IN_OTHER_LOOP)
