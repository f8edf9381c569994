"""`/metrics`: every worker's pool telemetry in Prometheus' text format."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

router = APIRouter(tags=["metrics"])


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(request.app.state.telemetry.exposition(), media_type=CONTENT_TYPE_LATEST)
