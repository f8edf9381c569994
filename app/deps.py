"""Request dependencies: the connection is held until the request is done.

The generator yields *inside* the `with pool.connection()` block, so the
connection goes back to the pool only after the route has finished with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Annotated

from fastapi import Depends, Request

from .db import AsyncSession, Session, SyncSession
from .settings import Settings


async def async_session(request: Request) -> AsyncIterator[Session]:
    async with request.app.state.pool.connection() as conn:
        yield AsyncSession(conn)


def sync_session(request: Request) -> Iterator[Session]:
    # FastAPI runs a plain generator dependency in its thread pool, so the
    # blocking getconn() never stalls the event loop.
    with request.app.state.pool.connection() as conn:
        yield SyncSession(conn)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


SessionDep = Annotated[Session, Depends(async_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
