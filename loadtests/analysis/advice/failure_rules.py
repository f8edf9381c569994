"""Failed requests by class (README, "The app's error classes"), each with the fix it usually needs."""

from __future__ import annotations

from typing import Any

from loadtests.analysis.advice.findings import FAILURE, INFO, WARNING, Finding, Known, finding
from loadtests.analysis.advice.sizing import largest_fitting, pool_demand, size_for, stuck_pool

# class -> (severity, why it happens). The setting and value come from the run where they can.
_CAUSES = {
    "pool_timeout": (WARNING, "no connection came free within pool_timeout: the pool is too small for the load, or"
                     " connections are held too long; a longer pool_timeout only makes requests wait longer."),
    "pool_queue_full": (WARNING, "more requests were waiting than max_waiting, so the pool refused the rest at once:"
                        " load shedding if max_waiting was chosen for it, otherwise too small a pool."),
    "db_too_many_connections": (FAILURE, "the server refused a connection: the pools together, with every other"
                                " client, asked for more than the usable connections."),
    "db_connection_closed": (WARNING, "a connection broke under a request: the server restarted or ended it"
                             " (idle_session_timeout, a proxy's idle cut-off, a terminated backend)."),
    "db_error": (WARNING, "the database itself raised an error (SQL, statement_timeout, a connection in the wrong"
                 " state after it was given back): not a pool size problem; locust_failures.csv has the messages."),
    "db_prepared_statement_lost": (WARNING, "a named prepared statement was looked for on another server connection"
                                   " than the one it was prepared on: under PgBouncer's transaction pooling each"
                                   " transaction may get another server connection."),
    "http_connection_error": (WARNING, "the app did not answer: workers crashed, restarted or their accept backlog"
                              " overflowed; the app's log says which."),
}
_OTHER = (WARNING, "failures the harness does not classify; locust_failures.csv has the messages.")


def failures(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """One finding per class of failed requests."""
    errors = summary.get("errors_by_class") or {}
    total = int((summary.get("requests") or {}).get("total") or 0)
    faults = [f["kind"] for f in summary.get("faults") or []]
    out = []
    for name, count in sorted(errors.items(), key=lambda item: (-item[1], item[0])):
        if not count:
            continue
        severity, cause = _CAUSES.get(name, _OTHER)
        setting, suggested, change = _fix(name, summary, known, target=target)
        if faults and name in ("db_connection_closed", "http_connection_error", "db_error", "pool_timeout"):
            severity, cause = INFO, cause + f" The run injected faults ({', '.join(faults)}): failures right after them are expected."
        figure = {"class": name, "failures": int(count), "requests_total": total}
        if name == "pool_timeout" and (summary.get("pool") or {}).get("available"):
            figure["pool_timeouts"] = int(summary["pool"]["pool_timeouts"])
        out.append(finding(
            f"failures:{name}", severity, figure=figure, setting=setting, suggested=suggested,
            why=cause[0].upper() + cause[1:],
            text=f"failures: {count} of {total} requests failed with {name} -> {change}",
        ))
    return out


# The sample app's own words (summary.json `error_texts`) for a connection used after it was given back:
# psycopg's message for a connection the pool closed on this side (max_lifetime), never a server's or a proxy's
# cut ("server closed the connection unexpectedly"), and the wrong-state errors of one shared by two requests.
_USED_AFTER_RETURN = ("db_connection_closed: the connection is closed", "can't change 'autocommit' now",
                      "forbidden within a Transaction context", "another command is already in progress")
_USED_AFTER_RETURN_FIX = ("a connection used after it was given back to the pool (a dependency that leaves"
                          " `with pool.connection()` before the request is done): yield inside the block; a check"
                          " cannot help, it runs when a connection is handed out, and configure only moves the settings")


# Texts of a prepared statement meeting another server connection than its own (PgBouncer's transaction pooling).
_PREPARED_ELSEWHERE = ("prepared statement", "bind message supplies", "incorrect binary data format in bind parameter",
                       "insufficient data left in message")
_PREPARED_FIX = ("turn named prepared statements off behind PgBouncer's transaction pooling (psycopg"
                 " prepare_threshold=None, asyncpg statement_cache_size=0: --no-prepared-statements), or PgBouncer 1.21"
                 " or newer with max_prepared_statements > 0, which tracks them itself")


def prepared_elsewhere(summary: dict[str, Any], name: str) -> int:
    """Failed requests of class `name` whose text says a prepared statement met another server connection."""
    texts = summary.get("error_texts") or {}
    return sum(n for text, n in texts.items()
               if text.startswith(f"{name}: ") and any(words in text for words in _PREPARED_ELSEWHERE))


def used_after_return(summary: dict[str, Any], name: str) -> int:
    """Failed requests of class `name` whose text says their connection was used after it went back to the pool."""
    texts = summary.get("error_texts") or {}
    return sum(n for text, n in texts.items()
               if text.startswith(f"{name}: ") and any(words in text for words in _USED_AFTER_RETURN))


def _fix(name: str, summary: dict[str, Any], known: Known, *, target: float) -> tuple[str | None, Any, str]:
    if name in ("db_connection_closed", "db_error") and used_after_return(summary, name):
        return None, None, _USED_AFTER_RETURN_FIX
    behind_pooler = (summary.get("pgbouncer") or {}).get("pool_mode", "transaction") == "transaction"
    if name == "db_prepared_statement_lost" or (name == "db_error" and summary.get("pgbouncer") and behind_pooler
                                                and prepared_elsewhere(summary, name)):
        return "prepared_statements", False, _PREPARED_FIX
    if name in ("pool_timeout", "pool_queue_full"):
        size = stuck_pool(summary, known) or size_for(summary, known, demand=pool_demand(summary.get("pool") or {}),
                                                     target=target)
        if name == "pool_queue_full":
            return size.setting, size.suggested, f"{size.change}; or a larger max_waiting (0: unbounded) if shedding was not meant"
        return size.setting, size.suggested, size.change
    if name == "db_too_many_connections":
        size = largest_fitting(summary, known, target=target)
        return size.setting, size.suggested, size.change
    if name == "db_connection_closed":
        if (summary.get("proxy") or {}).get("mode") == "silent":
            # The check's own query would hang into the same silent cut: see the proxy rule's advice.
            return "keepalives_idle", None, ("a silent cut: a check would hang the same way; TCP keepalives under the"
                                             " cut keep the flow alive (the proxy advice below)")
        if known.get("pool_check") is False:
            return "pool_check", True, "turn on the pool's check so a broken connection is replaced before a request gets it"
        # max_lifetime is no answer to an idle cut: psycopg applies it on return, never to a connection idle in the pool.
        return "max_idle", None, ("keep connections from sitting idle past the cut-off of the server or a proxy:"
                                  " max_idle below it (for those above min_size) or TCP keepalives under it;"
                                  " max_lifetime does not close idle connections; retry idempotent requests")
    if name == "db_error":
        return None, None, "read the messages in locust_failures.csv; a wrong-state error means a connection used after it was given back"
    if name == "http_connection_error":
        return None, None, "read the app's log for crashed or restarted workers"
    return None, None, "read the messages in locust_failures.csv"
