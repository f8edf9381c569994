"""The fixed-rate loop of the sampling processes (collector, scraper, PgBouncer's pools).

It stops on SIGTERM or SIGINT (the handlers only set a flag), when the
runner that started it disappears, or after `max_seconds`: a sampler never
outlives its run.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")


class SamplingLoop:
    """`for _ in loop.ticks():` runs the body every `interval` seconds until told to stop."""

    def __init__(self, *, interval: float, max_seconds: float) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.max_seconds = max_seconds
        self.should_exit = False
        self._parent = os.getppid()

    def install_signal_handlers(self) -> None:
        def request_exit(signum: int, frame: object) -> None:
            self.should_exit = True

        signal.signal(signal.SIGTERM, request_exit)
        signal.signal(signal.SIGINT, request_exit)

    def orphaned(self) -> bool:
        # The runner was killed: nobody will stop us, so stop ourselves.
        return os.getppid() != self._parent

    def ticks(self) -> Iterator[None]:
        next_at = time.monotonic()
        deadline = next_at + self.max_seconds
        while not self.should_exit and not self.orphaned() and time.monotonic() < deadline:
            yield
            next_at += self.interval
            # Sleep in small steps so a stop request is seen within 0.2 s.
            while not self.should_exit and time.monotonic() < next_at:
                time.sleep(min(0.2, max(next_at - time.monotonic(), 0)))
            # Fallen behind (a slow sample): do not burst to catch up.
            next_at = max(next_at, time.monotonic() - self.interval)

    def reconnect(self, connect: Callable[[], T], *, errors: tuple[type[BaseException], ...]) -> T | None:
        """`connect()` again until it succeeds, backing off; None if told to stop first.

        A restarted server (`--fault db-restart`) or PgBouncer refuses for a
        moment: the sampler waits it out rather than ending the run's record.
        """
        while not self.should_exit and not self.orphaned():
            try:
                return connect()
            except errors:
                time.sleep(min(self.interval * 5, 1.0))  # a back-off between attempts
        return None
