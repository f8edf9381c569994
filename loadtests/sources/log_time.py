"""A PostgreSQL log timestamp as epoch seconds: the one clock every log format shares."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from loadtests.errors import LogTimezoneError

_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?)\s*(\S+)?$")
_OFFSET = re.compile(r"^([+-])(\d\d)(?::?(\d\d))?$")


def parse_time(text: str) -> float:
    """A log timestamp ("2026-01-02 03:04:05.678 UTC", or a numeric offset) as epoch seconds."""
    match = _TIME.match(text.strip())
    if not match:
        raise ValueError(f"not a log timestamp: {text!r}")
    stamp, zone = match.groups()
    naive = datetime.fromisoformat(stamp)
    return naive.replace(tzinfo=_zone(zone or "UTC")).timestamp()


def _zone(name: str) -> timezone:
    if name.upper() in ("UTC", "GMT", "Z"):
        return timezone.utc
    offset = _OFFSET.match(name)
    if not offset:
        raise LogTimezoneError(f"log time zone {name!r} is ambiguous; set the server's log_timezone to 'UTC'")
    sign, hours, minutes = offset.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-delta if sign == "-" else delta)
