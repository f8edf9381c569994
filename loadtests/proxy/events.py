"""proxy_events.jsonl (`run_folder.PROXY_EVENTS_JSONL`): one JSON object per line, each
written and flushed as it happens.

Every event has `event` (its kind), `t` (epoch seconds) and, but for
`listening` and `stopped`, `conn` (the relay's number for the connection):

- `listening`: port, upstream, mode, idle_cut_s, client_timeout_s, max_seconds
- `open`: client_port (the app's end of the connection)
- `linked`: client_port, upstream_addr, upstream_port: the relay's own socket to
  the server for that client, the endpoint the server sees as its client
- `upstream_failed`: error (the server did not accept the relay's connection)
- `cut`: mode, idle_s, age_s, last_direction (`down`: the server spoke last, so
  the connection sat idle with its answer; `up`: the client was waiting for
  an answer), bytes_up, bytes_down
- `hang`: bytes, after_cut_s: the client's first bytes into a silently cut
  connection, a request that will get no answer
- `end`: side (`client` or `server`), reason (`eof`, `error`, `relay`: closed
  after the other side, `cut`, `client_timeout`, `stopped`), max_idle_s (the
  longest pause in the connection), hang_s (client side of a hung connection)
- `stopped`: reason (`max_seconds`, `signal`, `orphaned`), open (links still open)
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO


RESET, SILENT = "reset", "silent"
MODES = (RESET, SILENT)


class EventLog:
    """Appends events to the file; each is flushed at once, so a killed relay keeps them.

    The file is created by the first event: a relay that could not listen leaves none.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None

    def write(self, event: str, **fields: Any) -> None:
        if self._file is None:
            self._file = open(self.path, "a", encoding="utf-8")
        record = {"event": event, "t": round(time.time(), 6), **fields}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete event of the file; a torn last line (a killed relay) is skipped."""
    return list(_complete(path))


def _complete(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and "event" in record:
                yield record


def listening_port(path: Path) -> int | None:
    """The relay's port once it listens (its readiness), else None.

    A probe connection would be relayed to the server and counted as a
    client, so readiness is read from the relay's own first event instead.
    """
    try:
        for record in _complete(path):
            if record["event"] == "listening":
                return int(record["port"])
    except OSError:
        return None
    return None


def relayed_clients(path: Path) -> dict[tuple[str, int], int]:
    """The relay's endpoint towards the server -> the client port it relays, for every link so far.

    The kernel reuses ports: a later link on the same endpoint replaces the earlier one.
    """
    try:
        return {(str(e["upstream_addr"]), int(e["upstream_port"])): int(e["client_port"])
                for e in _complete(path) if e["event"] == "linked"}
    except OSError:
        return {}
