"""Failure classes: how the load names a failed request, and how the summary reads the name back.

The sample app answers a failure with its class (`{"error": "pool_timeout"}`,
app/errors.py); the locustfile fails the request with that name, so Locust's
failure table, the failures per second and summary.json all count by class.
"""

from __future__ import annotations

import re

OTHER = "other"
HTTP_CONNECTION_ERROR = "http_connection_error"
ERROR_CLASSES = (
    "pool_timeout",
    "pool_queue_full",
    "db_too_many_connections",
    "db_connection_closed",
    "db_prepared_statement_lost",  # behind PgBouncer's transaction pooling (loadtests/run/pgbouncer.py)
    "db_error",
    HTTP_CONNECTION_ERROR,
)
_NAMED = re.compile(r"\b(pool_[a-z_]+|db_[a-z_]+|http_[a-z0-9_]+)\b")


def failure_name(status: int, body: object) -> str:
    """The failure's class: the app's error class, else the HTTP status."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    if status == 0:
        return HTTP_CONNECTION_ERROR
    return f"http_{status}"


def error_class(message: str) -> str:
    """The class named in a Locust failure message, e.g. "CatchResponseError('pool_timeout')"."""
    found = _NAMED.search(message)
    return found.group(1) if found else OTHER
