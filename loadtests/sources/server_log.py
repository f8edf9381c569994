"""Client sessions rebuilt from PostgreSQL's own log: exact, where sampling is not.

With `log_connections` and `log_disconnections` on, every session leaves a
"connection authorized" record and a "disconnection" record with the same
`session_id`. A connection the server refuses after authorizing it ("too many
clients already", "remaining connection slots are reserved") logs a FATAL and
never a disconnection: it is a refusal, not a session. Everything here is a
pure function of the log's text, in jsonlog (one JSON object a line), csvlog, or
the stderr format read with its `log_line_prefix` (loadtests/sources/stderr_log.py).
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from loadtests.errors import LogTimezoneError
from loadtests.run_folder import SERVER_LOG_DIR
from loadtests.sources.log_time import parse_time
from loadtests.sources.stderr_log import PrefixError, matches_prefix, stderr_fields

logger = logging.getLogger("poolcheck.server_log")

JSONLOG, CSVLOG, STDERR = "jsonlog", "csvlog", "stderr"
LOG_NAMES = {JSONLOG: "postgresql.json", CSVLOG: "postgresql.csv"}
REFUSAL_MARKERS = ("too many clients already", "remaining connection slots are reserved")

# csvlog's fixed columns (PostgreSQL 14 and later; older logs simply have fewer).
_CSV_COLUMNS = (
    "timestamp", "user", "dbname", "pid", "connection_from", "session_id", "line_num", "ps",
    "session_start", "vxid", "txid", "error_severity", "state_code", "message", "detail", "hint",
    "internal_query", "internal_position", "context", "statement", "cursor_position", "func_name",
    "application_name", "backend_type", "leader_pid", "query_id",
)
_APP_IN_MESSAGE = re.compile(r"\bapplication_name=(.*?)(?: SSL enabled| GSS |$)")
# log_connections of PostgreSQL 18 is a list of stages; earlier, a boolean.
_LOGS_AUTHORIZATION = {"on", "true", "yes", "1", "all", "authorization"}
# Postmaster messages after which no backend of before is left.
_ALL_GONE = ("all server processes terminated; reinitializing", "database system is shut down")


@dataclass(frozen=True)
class Record:
    """The fields of one log record that connection accounting needs."""

    at: float
    session_id: str
    pid: int
    user: str
    application_name: str
    severity: str
    message: str
    session_start: float | None = None
    database: str = ""
    client_addr: str = ""  # the client's host; "[local]" for a Unix socket


@dataclass
class Session:
    """One client session: from its authorization to its end (None: still open when the log ends)."""

    session_id: str
    pid: int
    user: str
    application_name: str
    start: float
    end: float | None = None
    refused: bool = False
    database: str = ""
    client_addr: str = ""
    # Whose it is, by the rules of loadtests/sources/attribution.py; set when the run's backends are joined in.
    client: str = ""


@dataclass(frozen=True)
class Refusal:
    at: float
    pid: int
    user: str
    application_name: str
    message: str


def _record(fields: dict[str, Any]) -> Record | None:
    """A record, or None for a line that is not one; a zone that cannot be placed is an error."""
    try:
        at = parse_time(str(fields["timestamp"]))
    except LogTimezoneError:
        raise
    except (KeyError, ValueError):
        return None
    start = fields.get("session_start")
    seconds = fields.get("session_seconds")  # a stderr disconnection's session time, when the prefix has no %s
    return Record(
        at=at,
        session_id=str(fields.get("session_id") or ""),
        pid=int(fields.get("pid") or 0),
        user=str(fields.get("user") or ""),
        application_name=str(fields.get("application_name") or ""),
        severity=str(fields.get("error_severity") or ""),
        message=str(fields.get("message") or ""),
        session_start=parse_time(start) if start else (at - float(seconds) if seconds is not None else None),
        database=str(fields.get("dbname") or ""),
        client_addr=_client_host(fields),
    )


def _client_host(fields: dict[str, Any]) -> str:
    """jsonlog's `remote_host`, csvlog's `connection_from` ("host:port"), or the stderr prefix's %h / %r."""
    host = fields.get("remote_host")
    if host:
        return str(host)
    origin = str(fields.get("connection_from") or "")
    return origin.rpartition(":")[0] if ":" in origin and not origin.startswith("[local]") else origin


def jsonlog_records(lines: Iterable[str]) -> Iterator[Record]:
    for line in lines:
        try:
            record = _record(json.loads(line))
        except LogTimezoneError:
            raise
        except (ValueError, TypeError):
            continue  # a torn last line, or something that is not jsonlog
        if record is not None:
            yield record


def csvlog_records(text: Iterable[str]) -> Iterator[Record]:
    for row in csv.reader(text):
        record = _record(dict(zip(_CSV_COLUMNS, row)))
        if record is not None:
            yield record


def stderr_records(lines: Iterable[str], *, prefix: str) -> Iterator[Record]:
    """The records of a stderr log written with `prefix` (PrefixError when it cannot be read)."""
    for fields in stderr_fields(lines, prefix=prefix):
        record = _record(fields)
        if record is not None:
            yield record


def log_format(path: Path) -> str:
    """jsonlog, csvlog or stderr, from the file's first line: a csvlog line starts with its timestamp column."""
    with open(path, newline="", errors="replace") as f:
        first = f.readline()
    if first.startswith("{"):
        return JSONLOG
    if not first.strip() or next(csvlog_records([first]), None) is not None:
        return CSVLOG
    return STDERR


def looks_like_server_log(path: Path) -> bool:
    """Whether the file's first line is a jsonlog or csvlog record (an empty file may still fill up)."""
    with open(path, newline="", errors="replace") as f:
        first = f.readline()
    if not first.strip():
        return True
    records = jsonlog_records([first]) if first.startswith("{") else csvlog_records([first])
    return next(records, None) is not None


def logs_sessions(settings: dict[str, str], name: str) -> bool:
    """Whether the server logs each session's authorization (log_connections) or end (log_disconnections).

    A setting the server did not show counts as on: the log itself is checked after the run.
    """
    value = settings.get(name)
    if value is None:
        return True
    return bool({part.strip().lower() for part in value.split(",")} & _LOGS_AUTHORIZATION)


def messages_language_problem(settings: dict[str, str]) -> str | None:
    """Why the log's session records cannot be recognised, or None.

    The server writes "connection authorized" and "disconnection" in its
    lc_messages language; this module reads the English (untranslated) words.
    A setting the server did not show counts as English: the log itself is
    checked after the run.
    """
    value = (settings.get("lc_messages") or "").strip()
    if value in ("", "C", "POSIX") or value.startswith(("C.", "en")):
        return None
    return (f"the server writes its messages in lc_messages {value!r}, and the session records are read in"
            " English (\"connection authorized\", \"disconnection\"): set lc_messages = 'C' on the server")


def stderr_problem(path: Path, *, prefix: str) -> str | None:
    """Why a stderr log cannot be read with `prefix`, or None when one of its first lines matches it."""
    try:
        pattern_ok = stderr_matches(path, prefix=prefix)
    except PrefixError as exc:
        return str(exc)
    if pattern_ok:
        return None
    return (f"no line of it starts with log_line_prefix {prefix!r}: give the server's own"
            " (SHOW log_line_prefix) with --log-line-prefix, or a jsonlog or csvlog")


def stderr_matches(path: Path, *, prefix: str, lines: int = 50) -> bool:
    """Whether one of the first `lines` lines was written with `prefix` (an empty log may still fill up)."""
    with open(path, errors="replace") as f:
        head = [line for line, _ in zip(f, range(lines))]
    return not any(line.strip() for line in head) or matches_prefix(head, prefix=prefix)


def read_records(path: Path, *, prefix: str | None = None) -> list[Record]:
    """Every record of a log; a stderr log is read with its `log_line_prefix`."""
    kind = log_format(path)
    with open(path, newline="", errors="replace") as f:
        if kind == JSONLOG:
            return list(jsonlog_records(f))
        if kind == STDERR:
            return list(stderr_records(f, prefix=_prefix_for(path, prefix)))
        return list(csvlog_records(f))


def _prefix_for(path: Path, prefix: str | None) -> str:
    if prefix is None:
        raise ValueError(f"{path}: not jsonlog or csvlog; a stderr log is read with the server's log_line_prefix")
    return prefix


def _authorized_app(message: str) -> str:
    match = _APP_IN_MESSAGE.search(message)
    return match.group(1) if match else ""


def _is_refusal(record: Record) -> bool:
    lowered = record.message.lower()
    return record.severity == "FATAL" and any(marker in lowered for marker in REFUSAL_MARKERS)


class _Rebuild:
    """Walks the records once, opening and closing sessions."""

    def __init__(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.refusals: list[Refusal] = []

    def feed(self, record: Record) -> None:
        if record.message.startswith("connection authorized:"):
            self._open(record)
        elif _is_refusal(record):
            self._refuse(record)
        elif record.message.startswith("disconnection:") or record.severity == "FATAL":
            self._close(record)
        elif record.message.startswith(_ALL_GONE):
            self._close_all(record.at)

    def _open(self, record: Record) -> None:
        app = record.application_name or _authorized_app(record.message)
        self.sessions[record.session_id] = Session(
            record.session_id, record.pid, record.user, app, record.at,
            database=record.database, client_addr=record.client_addr,
        )

    def _refuse(self, record: Record) -> None:
        session = self.sessions.get(record.session_id)
        if session is not None:
            session.refused, session.end = True, record.at
        app = record.application_name or (session.application_name if session else "")
        self.refusals.append(Refusal(record.at, record.pid, record.user, app, record.message))

    def _close(self, record: Record) -> None:
        session = self.sessions.get(record.session_id)
        if session is None and record.message.startswith("disconnection:"):
            # Authorized before the log begins: it has been open since its session_start.
            start = record.session_start if record.session_start is not None else record.at
            session = Session(record.session_id, record.pid, record.user, record.application_name, start,
                              database=record.database, client_addr=record.client_addr)
            self.sessions[record.session_id] = session
        if session is None or session.refused:
            return
        session.end = record.at
        session.application_name = record.application_name or session.application_name

    def _close_all(self, at: float) -> None:
        for session in self.sessions.values():
            if session.end is None:
                session.end = at


def rebuild_sessions(records: Iterable[Record]) -> tuple[list[Session], list[Refusal]]:
    """Every client session and every refused connection attempt, in log order."""
    rebuild = _Rebuild()
    for record in records:
        rebuild.feed(record)
    return list(rebuild.sessions.values()), rebuild.refusals


def counts_over_time(sessions: Iterable[Session], *, include: Callable[[Session], bool] = lambda s: True) -> list[tuple[float, int]]:
    """(time, open sessions just after it) at every change, for the sessions `include` keeps.

    At equal times a session that ends is counted out before one that starts
    is counted in: the log's millisecond stamps cannot order them, and the
    server had freed the slot by the time it logged the end.
    """
    changes: list[tuple[float, int]] = []
    for session in sessions:
        if session.refused or not include(session):
            continue
        changes.append((session.start, +1))
        if session.end is not None:
            changes.append((session.end, -1))
    changes.sort()
    steps, count = [], 0
    for at, delta in changes:
        count += delta
        steps.append((at, count))
    return steps


def peak(steps: list[tuple[float, int]]) -> tuple[int, float | None]:
    """The highest count and the first time it was reached."""
    best, when = 0, None
    for at, count in steps:
        if count > best:
            best, when = count, at
    return best, when


def copy_window(source: Path, dest_dir: Path, *, start: float, end: float, prefix: str | None = None) -> int:
    """Copy the records of `source` from `start` to `end` (epoch seconds) into `dest_dir`; return how many.

    A user's server log can hold months; the run folder keeps the run's part,
    so the summary stays a function of the folder alone. A stderr log is kept
    as jsonlog records of the fields its prefix gave: read again, it needs no prefix.
    """
    kind = log_format(source)
    dest_dir.mkdir(parents=True, exist_ok=True)

    def keep(record: Record | None) -> bool:
        return record is not None and start <= record.at <= end

    name = LOG_NAMES[JSONLOG if kind == STDERR else kind]
    with open(source, newline="", errors="replace") as f, open(dest_dir / name, "w", newline="") as out:
        if kind == STDERR:
            return _copy_stderr(f, out, keep, prefix=_prefix_for(source, prefix))
        return _copy_jsonlog(f, out, keep) if kind == JSONLOG else _copy_csvlog(f, out, keep)


def _copy_stderr(lines: Iterable[str], out: TextIO, keep: Callable[[Record | None], bool], *, prefix: str) -> int:
    copied = 0
    for fields in stderr_fields(lines, prefix=prefix):
        if keep(_record(fields)):
            out.write(json.dumps(fields) + "\n")
            copied += 1
    return copied


def _copy_jsonlog(lines: Iterable[str], out: TextIO, keep: Callable[[Record | None], bool]) -> int:
    copied = 0
    for line in lines:
        if keep(next(jsonlog_records([line]), None)):
            out.write(line)
            copied += 1
    return copied


def _copy_csvlog(text: Iterable[str], out: TextIO, keep: Callable[[Record | None], bool]) -> int:
    writer, copied = csv.writer(out), 0
    for row in csv.reader(text):
        if keep(_record(dict(zip(_CSV_COLUMNS, row)))):
            writer.writerow(row)
            copied += 1
    return copied


def find_log(run_dir: Path) -> Path | None:
    """The server log a run folder holds, if any."""
    for name in LOG_NAMES.values():
        path = run_dir / SERVER_LOG_DIR / name
        if path.exists() and path.stat().st_size > 0:
            return path
    return None

