"""The server log's sessions made whole and attributed like the samples.

The log of the run's own time shows a session opened before the run only if
it ends during it; the collector's first look at pg_stat_activity
(backends.csv, `at_start`) holds the others. Joined by `session_id`, every
session the run could see is here once, and each is attributed by the rules
the samples follow (loadtests/sources/attribution.py): the watch filter, then
the client the collector named, else the log's own fields.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from loadtests.sources.attribution import WatchFilter, is_app_client, parse_watch_filter
from loadtests.sources.backends import SeenBackend
from loadtests.sources.server_log import Session

__all__ = ["attributed_sessions", "clamped", "is_app_client", "watch_of"]


def watch_of(config: dict[str, Any]) -> WatchFilter:
    return parse_watch_filter(config.get("watch_filter") or {})


def attributed_sessions(
    sessions: list[Session], seen: dict[str, SeenBackend], *, watch: WatchFilter
) -> list[Session]:
    """The watched sessions, each with its `client`; those open at the start and never logged added."""
    out, joined = [], set()
    by_pid: dict[int, list[SeenBackend]] = {}
    for seen_backend in seen.values():
        by_pid.setdefault(seen_backend.pid, []).append(seen_backend)
    for session in sessions:
        backend = _backend_of(session, seen, by_pid)
        if backend is not None:
            joined.add(backend.session_id)
            if backend.watched:
                out.append(replace(session, client=backend.client,
                                   database=session.database or backend.database))
        elif watch.matches(session):  # type: ignore[arg-type]  # the filter reads only the three names
            out.append(replace(session, client=_client_from_log(session)))
    logged = {s.session_id for s in sessions} | joined
    for backend in seen.values():
        if backend.at_start and backend.watched and backend.session_id not in logged:
            out.append(Session(
                backend.session_id, backend.pid, backend.user, backend.application_name, backend.backend_start,
                database=backend.database, client=backend.client,
            ))
    return out


# How far a log's session start may be from pg_stat_activity's backend_start: authentication time.
_SAME_BACKEND_S = 2.0


def _backend_of(session: Session, seen: dict[str, SeenBackend], by_pid: dict[int, list[SeenBackend]]) -> SeenBackend | None:
    """The backend the collector saw of this session: by session_id, else by pid and start.

    A stderr log without %c has session ids made from a logged time (loadtests/sources/stderr_log.py),
    which can fall in the second after the backend's start; its pid and start still name it.
    """
    backend = seen.get(session.session_id)
    if backend is not None:
        return backend
    return next((b for b in by_pid.get(session.pid, ()) if abs(b.backend_start - session.start) < _SAME_BACKEND_S), None)


def _client_from_log(session: Session) -> str:
    """A session the collector never saw: named by what the log tells of it."""
    if session.application_name:
        return session.application_name
    if session.client_addr and session.client_addr != "[local]":
        return f"addr:{session.client_addr}"
    return f"user:{session.user}@{session.database}"


def clamped(sessions: list[Session], start: float | None) -> list[Session]:
    """Sessions opened before `start` counted from `start`: what the run saw of them."""
    if start is None:
        return sessions
    return [replace(s, start=start) if s.start < start else s for s in sessions]
