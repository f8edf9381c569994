"""CSV files another process appends to: is there a first row yet, what is new, what is the last row."""

from __future__ import annotations

import csv
import io
from pathlib import Path

_TAIL_BYTES = 8192  # longer than any row the samplers write


def has_data_row(path: Path) -> bool:
    """True once a CSV file another process writes has its header and one row: a readiness check."""
    try:
        with open(path) as f:
            return sum(1 for _ in zip(range(2), f)) >= 2
    except OSError:
        return False


class CsvFollower:
    """Reads only what is new; a line without its newline yet waits for the next call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._header: list[str] | None = None

    def new_rows(self) -> list[dict[str, str]]:
        try:
            with open(self.path, "rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except OSError:
            return []
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        lines = complete.decode(errors="replace").splitlines()
        if self._header is None and lines:
            self._header = next(csv.reader([lines.pop(0)]))
        if self._header is None:
            return []
        return [dict(zip(self._header, values)) for values in csv.reader(lines) if len(values) == len(self._header)]


def last_row(path: Path) -> dict[str, str] | None:
    """The last complete row of a CSV file being appended to, read from its tail."""
    try:
        with open(path, "rb") as f:
            header = f.readline().decode()
            size = f.seek(0, io.SEEK_END)
            f.seek(max(size - _TAIL_BYTES, len(header)))
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    complete = [line for line in lines[1:] if line] if len(lines) > 1 else []
    if not complete:
        return None
    rows = list(csv.DictReader([header, complete[-1]]))
    return rows[0] if rows else None
