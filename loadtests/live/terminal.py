"""The live view of a run in the terminal: phase, time, users, rps, connections now and peak vs budget, failures.

On a terminal the display redraws in place about once a second; elsewhere
(CI logs, pipes) it prints a plain line every few seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table

from loadtests.budget import ServerLimits, ServerSideBudget
from loadtests.config_views import COLLECTOR_CLIENTS
from loadtests.live.state import ConnectionLines, LiveState
from loadtests.shapes import stage_at

if TYPE_CHECKING:  # only annotated: the view reads the config, it is no part of making one
    from loadtests.config import RunConfig


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
        closes_after_s: float = 0.0,
    ) -> None:
        self.config = config
        # The connections it counts are the server's: behind PgBouncer, PgBouncer's server pools are their budget.
        pooler = config.pooler_budget
        side = ServerSideBudget.of(config.budget.as_dict(), pooler.as_dict(limits) if pooler else None,
                                   harness_clients=COLLECTOR_CLIENTS)
        self.limits = ConnectionLines.of(side, usable=limits.usable, max_connections=limits.max_connections)
        self.closes_after_s = closes_after_s  # the web UI stays up this long after the shape's end
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
        if stage:
            return stage.phase
        return "closing" if self.closes_after_s else "ending"

    def _clock(self, elapsed: float) -> str:
        """Seconds of the load, stopped at its total; then the web UI's close-down, counted down."""
        total = self.config.duration
        if elapsed <= total:
            return f"{elapsed:.0f}/{total:g} s"
        if self.closes_after_s:
            return f"{total:g}/{total:g} s, web UI closes in {max(total + self.closes_after_s - elapsed, 0):.0f} s"
        return f"{total:g}/{total:g} s"

    def line(self) -> str:
        """The plain line, as printed off a terminal."""
        elapsed = time.monotonic() - self.started
        s, lim = self.state, self.limits
        return (
            f"[{self._phase(elapsed):>6}] {self._clock(elapsed):>9}"
            f"  users {s.users:>4}  rps {s.rps:7.1f}"
            f"  conns {s.connections_now:>3} peak {s.peak:>3} / {lim.budget_text()} / usable {lim.usable}"
            f"  failures {s.failures_text()}"
        )

    def panel(self) -> Group:
        """The terminal display: a line of figures and two bars, time and connections against usable."""
        elapsed = time.monotonic() - self.started
        s, lim = self.state, self.limits
        over = s.peak >= lim.usable or s.connections_now > lim.budget
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            f"[bold]{self._phase(elapsed)}[/]", self._clock(elapsed),
            ProgressBar(total=self.config.duration, completed=min(elapsed, self.config.duration), width=30),
        )
        grid.add_row(
            f"users {s.users}", f"rps {s.rps:.1f}",
            f"failures [{'red' if s.failures else 'green'}]{s.failures_text()}[/]",
        )
        grid.add_row(
            f"connections {s.connections_now}", f"peak [{'red' if over else 'green'}]{s.peak}[/]",
            f"{lim.budget_text()}  usable {lim.usable}  max_connections {lim.max_connections}",
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
