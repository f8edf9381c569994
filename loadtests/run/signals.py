"""Ctrl-C and SIGTERM during a run: the handlers only count; the main loop and every wait read the count."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Stop:
    """How many times the user asked the run to stop; true once they have."""

    requests: int = 0

    def __call__(self) -> bool:
        return self.requests > 0

    def forced(self) -> bool:
        """A second request: teardown kills at once instead of waiting for graceful stops."""
        return self.requests > 1


@contextmanager
def counting_signals(stop: Stop) -> Iterator[Stop]:
    """SIGINT and SIGTERM add to `stop` while the block runs; the previous handlers come back after."""

    def on_signal(signum: int, frame: object) -> None:
        # Only a count: anything more here could run in the middle of a write.
        stop.requests += 1

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
