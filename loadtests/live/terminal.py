"""The live view of a run: phase, time, users, rps, connections now and peak vs budget, failures.

`LiveState` follows the files the collector and Locust append to; the
terminal display (`Progress`) and the Locust web UI's Database tab
(`loadtests/live/web_ui.py`) both show it. On a terminal the display redraws
in place about once a second; elsewhere (CI logs, pipes) it prints a plain
line every few seconds.
"""

from __future__ import annotations

import csv
import io
import sys
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from loadtests.budget import ServerLimits
from loadtests.sources.collector import CONNECTIONS_CSV
from loadtests.config import RunConfig
from loadtests.shapes import stage_at
from loadtests.sources.csv_tail import CsvFollower
from loadtests.analysis.timeline import FAILURES_BY_SECOND_CSV, STATE_COLUMNS, STATS_HISTORY_CSV


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


@dataclass(frozen=True)
class Limits:
    """The lines a live view measures connections against."""

    budget: int
    usable: int
    max_connections: int


def _int(value: str | None) -> int:
    try:
        return int(float(value or 0))
    except ValueError:
        return 0


class LiveState:
    """What a run has recorded so far, read incrementally from its folder."""

    def __init__(self, run_dir: Path, *, keep_samples: int = 1200) -> None:
        self._connections = CsvFollower(run_dir / CONNECTIONS_CSV)
        self._history = CsvFollower(run_dir / STATS_HISTORY_CSV)
        self._failures = CsvFollower(run_dir / FAILURES_BY_SECOND_CSV)
        self.samples: deque[dict[str, Any]] = deque(maxlen=keep_samples)
        self.peak = 0
        self.load: dict[str, str] = {}
        self.failures_by_class: Counter[str] = Counter()

    def update(self) -> "LiveState":
        for row in self._connections.new_rows():
            sample = {"t": float(row.get("elapsed_s") or 0), "total": _int(row.get("total"))}
            sample.update({state: sum(_int(row.get(c)) for c in columns) for state, columns in STATE_COLUMNS.items()})
            self.samples.append(sample)
            self.peak = max(self.peak, sample["total"])
        for row in self._history.new_rows():
            if row.get("Name") == "Aggregated":
                self.load = row
        for row in self._failures.new_rows():
            self.failures_by_class[row.get("error_class") or "other"] += _int(row.get("count"))
        return self

    @property
    def connections_now(self) -> int:
        return self.samples[-1]["total"] if self.samples else 0

    @property
    def users(self) -> int:
        return _int(self.load.get("User Count"))

    @property
    def rps(self) -> float:
        try:
            return float(self.load.get("Requests/s") or 0)
        except ValueError:
            return 0.0

    @property
    def failures(self) -> int:
        return _int(self.load.get("Total Failure Count"))

    def failures_text(self) -> str:
        classes = ", ".join(f"{name} {count}" for name, count in self.failures_by_class.most_common(3))
        return f"{self.failures} ({classes})" if classes else str(self.failures)


class Progress:
    """Called about twice a second by the runner's main loop; shows the state once a second."""

    def __init__(
        self,
        run_dir: Path,
        *,
        config: RunConfig,
        limits: ServerLimits,
        echo: Callable[[str], None],
        plain_every: float = 5.0,
        terminal: bool | None = None,
    ) -> None:
        self.config = config
        self.limits = Limits(config.budget.total, limits.usable, limits.max_connections)
        self.echo = echo
        self.state = LiveState(run_dir)
        self.stages = config.stages()
        self.started = time.monotonic()
        self.last_shown = 0.0
        self.plain_every = plain_every
        self.terminal = sys.stdout.isatty() if terminal is None else terminal
        self.live: Live | None = None

    def _phase(self, elapsed: float) -> str:
        stage = stage_at(self.stages, elapsed)
        return stage.phase if stage else "ending"

    def line(self) -> str:
        """The plain line, as printed off a terminal."""
        elapsed = time.monotonic() - self.started
        s, lim = self.state, self.limits
        return (
            f"[{self._phase(elapsed):>6}] {elapsed:5.0f}/{self.config.duration:g} s"
            f"  users {s.users:>4}  rps {s.rps:7.1f}"
            f"  conns {s.connections_now:>3} peak {s.peak:>3} / budget {lim.budget} / usable {lim.usable}"
            f"  failures {s.failures_text()}"
        )

    def panel(self) -> Group:
        """The terminal display: a line of figures and two bars, time and connections against usable."""
        elapsed = time.monotonic() - self.started
        s, lim = self.state, self.limits
        over = s.peak >= lim.usable or s.connections_now > lim.budget
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            f"[bold]{self._phase(elapsed)}[/]", f"{elapsed:.0f}/{self.config.duration:g} s",
            ProgressBar(total=self.config.duration, completed=min(elapsed, self.config.duration), width=30),
        )
        grid.add_row(
            f"users {s.users}", f"rps {s.rps:.1f}",
            f"failures [{'red' if s.failures else 'green'}]{s.failures_text()}[/]",
        )
        grid.add_row(
            f"connections {s.connections_now}", f"peak [{'red' if over else 'green'}]{s.peak}[/]",
            f"budget {lim.budget}  usable {lim.usable}  max_connections {lim.max_connections}",
        )
        bar = ProgressBar(total=lim.max_connections, completed=s.connections_now, width=60,
                          complete_style="red" if over else "cyan")
        return Group(grid, bar)

    def tick(self) -> None:
        now = time.monotonic()
        if self.terminal and now - self.last_shown >= 1.0:
            self.state.update()
            self._live().update(self.panel(), refresh=True)
            self.last_shown = now
        elif not self.terminal and now - self.last_shown >= self.plain_every:
            self.state.update()
            self.echo(self.line())
            self.last_shown = now

    def _live(self) -> Live:
        if self.live is None:
            self.live = Live(self.panel(), console=Console(), auto_refresh=False, transient=False)
            self.live.start()
        return self.live

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
