"""The load: a fast read, a read that holds its connection, a write."""

from __future__ import annotations

import os
import random

from fastapi import APIRouter, HTTPException, Query

from ..deps import SessionDep, SettingsDep

router = APIRouter(prefix="/items", tags=["items"])


@router.get("/read")
async def fast_read(session: SessionDep, item_id: int = Query(default_factory=lambda: random.randint(1, 100), ge=1, le=100)) -> dict:
    row = await session.fetch_one("SELECT id, name FROM items WHERE id = %s", (item_id,))
    if row is None:
        raise HTTPException(status_code=404, detail="no such item")
    return {"id": row[0], "name": row[1]}


@router.get("/hold")
async def hold(session: SessionDep, settings: SettingsDep, ms: int = Query(100, ge=0, le=60_000)) -> dict:
    """Hold the connection for `ms` milliseconds inside the server: pool pressure on demand."""
    if ms > settings.HOLD_MAX_MS:
        raise HTTPException(status_code=422, detail=f"ms must be at most {settings.HOLD_MAX_MS}")
    await session.fetch_one("SELECT pg_sleep(%s)", (ms / 1000.0,))
    return {"held_ms": ms}


@router.post("/write")
async def write(session: SessionDep, note: str = Query("load", max_length=200, pattern=r"^[^\x00]*$")) -> dict:
    # PostgreSQL text cannot hold NUL: refuse it here as a 422, not later as a 500.
    row = await session.in_transaction(
        [
            ("INSERT INTO writes (worker_pid, note) VALUES (%s, %s) RETURNING id", (os.getpid(), note)),
        ]
    )
    return {"id": row[0] if row else None}
