"""Pool and database errors as classified JSON responses.

Load tools count failures by message; a stable class per failure lets Locust's
failure table say which limit was hit: the pool, its queue or the server.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass

import psycopg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from psycopg_pool import PoolTimeout, TooManyRequests

logger = logging.getLogger("poolcheck.app.errors")

POOL_TIMEOUT = "pool_timeout"
POOL_QUEUE_FULL = "pool_queue_full"
DB_TOO_MANY_CONNECTIONS = "db_too_many_connections"
DB_CONNECTION_CLOSED = "db_connection_closed"
# A named prepared statement the server connection does not hold, or holds from another
# client: behind PgBouncer's transaction pooling, statements stay on the server connection
# they were prepared on, which the next transaction may not get (or another client gets).
DB_PREPARED_STATEMENT_LOST = "db_prepared_statement_lost"
DB_ERROR = "db_error"
ERROR_CLASSES = (
    POOL_TIMEOUT, POOL_QUEUE_FULL, DB_TOO_MANY_CONNECTIONS, DB_CONNECTION_CLOSED, DB_PREPARED_STATEMENT_LOST, DB_ERROR,
)

_TOO_MANY_MARKERS = ("too many clients already", "remaining connection slots are reserved")
_CLOSED_MARKERS = (
    "the connection is closed",
    "connection is lost",
    "server closed the connection unexpectedly",
    "consuming input failed",
    "terminating connection due to",
    "connection already closed",
    "ssl connection has been closed unexpectedly",
)


_PREPARED_LOST = re.compile(r"prepared statement \S+ (does not exist|already exists)", re.IGNORECASE)


def _mentions(message: str, markers: tuple[str, ...]) -> bool:
    lowered = message.lower()
    return any(marker in lowered for marker in markers)


def classify(exc: BaseException, *, refusal: str | None = None) -> str:
    """The error class of an exception raised while serving a request.

    `refusal` is the server's latest refusal of one of this pool's connection
    attempts: a PoolTimeout is then really the server's limit, because the pool
    was waiting for a connection the server would not give it.
    """
    message = str(exc)
    if isinstance(exc, TooManyRequests):
        return POOL_QUEUE_FULL
    if isinstance(exc, PoolTimeout):
        if refusal and _mentions(refusal, _TOO_MANY_MARKERS):
            return DB_TOO_MANY_CONNECTIONS
        return POOL_TIMEOUT
    if _mentions(message, _TOO_MANY_MARKERS):
        return DB_TOO_MANY_CONNECTIONS
    if _mentions(message, _CLOSED_MARKERS) or isinstance(exc, psycopg.InterfaceError):
        return DB_CONNECTION_CLOSED
    if _PREPARED_LOST.search(message):
        return DB_PREPARED_STATEMENT_LOST
    return DB_ERROR


@dataclass
class RefusalTracker:
    """The latest connection attempt the server refused, kept for `window` seconds."""

    window: float
    message: str | None = None
    at: float = 0.0
    count: int = 0

    def record(self, exc: BaseException) -> None:
        self.message = str(exc).strip()
        self.at = time.monotonic()
        self.count += 1

    def recent(self) -> str | None:
        if self.message is not None and time.monotonic() - self.at <= self.window:
            return self.message
        return None


def _status_for(error_class: str) -> int:
    return 500 if error_class == DB_ERROR else 503


def error_response(request: Request, exc: BaseException, error_class: str, *, refusal: str | None = None) -> JSONResponse:
    """The classified JSON error of a failed request, logged once."""
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    body = {"error": error_class, "detail": detail, "exception": type(exc).__name__}
    if error_class == DB_TOO_MANY_CONNECTIONS and refusal:
        body["server_refusal"] = refusal.splitlines()[0]
    logger.warning("%s %s: %s (%s)", request.method, request.url.path, error_class, detail)
    return JSONResponse(body, status_code=_status_for(error_class))


def install_error_handlers(app: FastAPI) -> None:
    async def handle_db_error(request: Request, exc: Exception) -> JSONResponse:
        tracker: RefusalTracker | None = getattr(request.app.state, "refusals", None)
        refusal = tracker.recent() if tracker else None
        return error_response(request, exc, classify(exc, refusal=refusal), refusal=refusal)

    app.add_exception_handler(psycopg.Error, handle_db_error)
