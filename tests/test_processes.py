"""A child that fails names itself and its log; the signal handlers only count."""

import os
import signal
import sys

import pytest

from loadtests.errors import ProcessError
from loadtests.run.processes import ManagedProcess
from loadtests.run.signals import Stop, counting_signals


def test_a_child_that_dies_before_ready_names_itself_and_its_log(tmp_path):
    log = tmp_path / "child.log"
    child = ManagedProcess(
        "doomed child",
        [sys.executable, "-c", "print('cannot start: no config'); raise SystemExit(3)"],
        log_path=log,
        ready=lambda: False,
        ready_timeout=10,
    )
    with pytest.raises(ProcessError) as caught:
        child.start()
    assert caught.value.name == "doomed child" and caught.value.log_path == log
    assert "doomed child" in str(caught.value) and str(log) in str(caught.value)
    assert "cannot start: no config" in log.read_text()


def test_signals_only_count_and_the_previous_handlers_come_back():
    before = signal.getsignal(signal.SIGINT)
    stop = Stop()
    with counting_signals(stop):
        os.kill(os.getpid(), signal.SIGINT)
        assert stop() and not stop.forced()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.forced()
    assert signal.getsignal(signal.SIGINT) is before
