"""SamplingLoop: the fixed-rate loop of the samplers, and its one reconnect policy."""

from __future__ import annotations

import pytest

from loadtests.sources.sampling_loop import SamplingLoop


class Refusing:
    """A connect() that is refused `times` times, then answers."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.left:
            self.left -= 1
            raise ConnectionRefusedError("the server is restarting")
        return "connection"


def test_reconnect_waits_out_a_refusal():
    connect = Refusing(2)
    assert SamplingLoop(interval=0.01, max_seconds=5).reconnect(connect, errors=(ConnectionRefusedError,)) == "connection"
    assert connect.calls == 3


def test_reconnect_gives_up_when_told_to_stop():
    loop = SamplingLoop(interval=0.01, max_seconds=5)
    loop.should_exit = True
    assert loop.reconnect(Refusing(1), errors=(ConnectionRefusedError,)) is None


def test_reconnect_lets_other_errors_through():
    def broken() -> str:
        raise ValueError("a bug, not a refusal")

    with pytest.raises(ValueError):
        SamplingLoop(interval=0.01, max_seconds=5).reconnect(broken, errors=(ConnectionRefusedError,))

