"""The live line during a run: phase, time, users, rps, connections vs budget, failures."""

from __future__ import annotations

import csv
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .budget import ServerLimits
from .collector import CONNECTIONS_CSV
from .config import RunConfig
from .results import LOCUST_PREFIX
from .shapes import stage_at

_TAIL_BYTES = 8192


def last_row(path: Path) -> dict[str, str] | None:
    """The last complete CSV row of a file being appended to, read from its tail."""
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


class Progress:
    """Called about once a second by the runner's main loop."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config: RunConfig,
        limits: ServerLimits,
        echo: Callable[[str], None],
        plain_every: float = 5.0,
    ) -> None:
        self.run_dir = run_dir
        self.config = config
        self.limits = limits
        self.echo = echo
        self.stages = config.stages()
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.peak = 0
        self.tty = sys.stdout.isatty()
        self.plain_every = plain_every

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        stage = stage_at(self.stages, elapsed)
        sample = last_row(self.run_dir / CONNECTIONS_CSV) or {}
        load = last_row(self.run_dir / f"{LOCUST_PREFIX}_stats_history.csv") or {}
        now = int(sample.get("total", 0) or 0)
        self.peak = max(self.peak, now)
        return (
            f"[{stage.phase if stage else 'ending':>6}] {elapsed:5.0f}/{self.config.duration:g} s"
            f"  users {load.get('User Count', '0'):>4}  rps {float(load.get('Requests/s', 0) or 0):7.1f}"
            f"  conns {now:>3} peak {self.peak:>3} / budget {self.config.budget.total} / usable {self.limits.usable}"
            f"  failures {load.get('Total Failure Count', '0')}"
        )

    def tick(self) -> None:
        now = time.monotonic()
        if self.tty and now - self.last_shown >= 1.0:
            sys.stdout.write("\r" + self.line() + "\033[K")
            sys.stdout.flush()
            self.last_shown = now
        elif not self.tty and now - self.last_shown >= self.plain_every:
            self.echo(self.line())
            self.last_shown = now

    def close(self) -> None:
        if self.tty:
            sys.stdout.write("\n")
