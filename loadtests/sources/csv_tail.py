"""Follow a CSV file another process appends to: each call returns the rows added since the last."""

from __future__ import annotations

import csv
from pathlib import Path


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
