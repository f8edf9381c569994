"""PostgreSQL's stderr log format: each line's `log_line_prefix`, read back into jsonlog's fields.

The stderr format (PostgreSQL's default `log_destination`, and what managed
services export) has no fixed columns: every line starts with whatever
`log_line_prefix` the server was given, then "SEVERITY:  message". The prefix
is turned into a regular expression with one named group per escape, so the
fields come out under the names jsonlog uses and the rest of the accounting
(loadtests/sources/server_log.py) reads them as it reads a jsonlog record.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from loadtests.sources.log_time import parse_time

_TIMESTAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
# escape -> (jsonlog field it fills, or None for one nobody reads; pattern of its text)
_ESCAPES: dict[str, tuple[str | None, str]] = {
    "m": ("timestamp", _TIMESTAMP + r"\.\d+ \S+"),
    "t": ("timestamp", _TIMESTAMP + r" \S+"),
    "n": ("epoch", r"\d+(?:\.\d+)?"),
    "s": ("session_start", _TIMESTAMP + r" \S+"),
    "p": ("pid", r"\d+"),
    "P": (None, r"\d*"),
    "c": ("session_id", r"[0-9a-f]+\.[0-9a-f]+"),
    "l": (None, r"\d+"),
    "u": ("user", r".*?"),
    "d": ("dbname", r".*?"),
    "a": ("application_name", r".*?"),
    "b": (None, r".*?"),
    "h": ("remote_host", r"\S*?"),
    "r": ("remote_host", r"[^\s(]*?"),  # then "(port)", or nothing for "[local]"
    "e": (None, r"[0-9A-Z]{5}"),
    "i": (None, r".*?"),
    "v": (None, r"\S*?"),
    "x": (None, r"\d*"),
    "Q": (None, r"-?\d*"),
}
_SEVERITY = r"(?P<error_severity>DEBUG[1-5]|LOG|INFO|NOTICE|WARNING|ERROR|FATAL|PANIC|DETAIL|HINT|QUERY|CONTEXT|LOCATION|STATEMENT):  "
_UNKNOWN = "[unknown]"
_ESCAPE = re.compile(r"%(-?\d+)?(.)", re.DOTALL)
_SESSION_TIME = re.compile(r"session time: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
_IN_MESSAGE = {"user": re.compile(r"\buser=(\S*)"), "dbname": re.compile(r"\bdatabase=(\S*)"),
               "remote_host": re.compile(r"\bhost=(\S*)")}


class PrefixError(ValueError):
    """A log_line_prefix from which connection accounting cannot be read."""


def prefix_pattern(prefix: str) -> re.Pattern[str]:
    """The regular expression of a whole log line written with `prefix`.

    PrefixError when the prefix gives no time (%m, %t or %n) or no way to tell
    sessions apart (%c or %p): such a log cannot be turned into sessions.
    """
    escapes = {match.group(2) for match in _ESCAPE.finditer(prefix)}
    if not escapes & {"m", "t", "n"}:
        raise PrefixError(f"log_line_prefix {prefix!r} has no time (%m, %t or %n): its log cannot be placed in the run")
    if not escapes & {"c", "p"}:
        raise PrefixError(f"log_line_prefix {prefix!r} has neither %c nor %p: its log cannot tell sessions apart")
    parts, named, optional, position = [], set(), 0, 0
    for match in _ESCAPE.finditer(prefix):
        parts.append(re.escape(prefix[position:match.start()]))
        position = match.end()
        padding, escape = match.groups()
        if escape == "%":
            parts.append("%")
        elif escape == "q":
            # Processes without a client (the postmaster, checkpointer, ...) stop the prefix here.
            parts.append("(?:")
            optional += 1
        else:
            field, pattern = _ESCAPES.get(escape, (None, ""))  # PostgreSQL prints nothing for an unknown escape
            group = f"(?P<{field}>{pattern})" if field and field not in named else f"(?:{pattern})"
            if escape == "r":
                group += r"(?:\(\d+\))?"
            named.add(field)
            parts.append(f" *{group} *" if padding else group)
    parts.append(re.escape(prefix[position:]))
    parts.append(")?" * optional)
    return re.compile("".join(parts) + _SEVERITY + r"(?P<message>.*)$")


def stderr_fields(lines: Iterable[str], *, prefix: str) -> Iterator[dict[str, Any]]:
    """jsonlog's fields of every line that starts with `prefix`; other lines (continuations) are skipped."""
    pattern = prefix_pattern(prefix)
    sessions, hosts = _SessionIds(), {}
    for line in lines:
        match = pattern.match(line.rstrip("\r\n"))
        if match is None:
            continue
        # A value not known yet (before authentication, no application_name) prints as "[unknown]".
        fields = {name: value for name, value in match.groupdict().items() if value not in (None, _UNKNOWN)}
        if "epoch" in fields:
            fields["timestamp"] = _utc_text(float(fields.pop("epoch")))
        message = fields["message"]
        for name, found in _IN_MESSAGE.items():
            # A prefix without %u, %d or %h: connection records name them in their message.
            if not fields.get(name) and message.startswith(("connection authorized:", "disconnection:")):
                value = found.search(message)
                if value:
                    fields[name] = value.group(1)
        if not fields.get("session_id") and fields.get("pid"):
            fields["session_id"] = sessions.of(fields)
        if not fields.get("remote_host") and fields.get("pid"):
            # "connection received: host=..." names the client once; the session's later lines do not.
            host = _IN_MESSAGE["remote_host"].search(message) if message.startswith("connection received:") else None
            if host:
                hosts[fields["pid"]] = host.group(1)
            if fields["pid"] in hosts:
                fields["remote_host"] = hosts[fields["pid"]]
            if message.startswith("disconnection:"):
                hosts.pop(fields["pid"], None)
        if "session_start" not in fields and message.startswith("disconnection:"):
            seconds = _session_seconds(message)
            if seconds is not None:
                fields["session_seconds"] = seconds  # its start, for a session begun before the log
        yield fields


def matches_prefix(lines: Iterable[str], *, prefix: str) -> bool:
    """Whether any of these lines is a log line written with `prefix`."""
    pattern = prefix_pattern(prefix)
    return any(pattern.match(line.rstrip("\r\n")) for line in lines)


class _SessionIds:
    """Without %c, a session's id made as PostgreSQL makes it: its start second and pid, in hex.

    Its start is when its backend logged "connection received" (or, for a
    session begun before the log, its disconnection's time less its session
    time), so sessions join pg_stat_activity's (loadtests/sources/backends.py).
    """

    def __init__(self) -> None:
        self.current: dict[str, str] = {}

    def of(self, fields: dict[str, Any]) -> str:
        pid, message = fields["pid"], fields["message"]
        if message.startswith("connection received:") or (pid not in self.current and not message.startswith("disconnection:")):
            self.current[pid] = _session_id(parse_time(fields["timestamp"]), pid)
        elif pid not in self.current:
            seconds = _session_seconds(message) or 0.0
            self.current[pid] = _session_id(parse_time(fields["timestamp"]) - seconds, pid)
        session_id = self.current[pid]
        if message.startswith("disconnection:"):
            del self.current[pid]
        return session_id


def _session_id(start: float, pid: str) -> str:
    return f"{int(start):x}.{int(pid):x}"


def _session_seconds(message: str) -> float | None:
    """A disconnection's "session time: H:MM:SS.fff" in seconds."""
    found = _SESSION_TIME.search(message)
    if not found:
        return None
    hours, minutes, seconds = found.groups()
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def _utc_text(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") + " UTC"
