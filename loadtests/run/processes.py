"""Child processes that are always stopped: the mirakuru/pyperf pattern.

Each child starts in its own process group, so that stopping the group also
stops whatever the child forked (gunicorn workers, Locust workers, PostgreSQL
backends). Readiness is polled against a deadline, never slept for.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from loadtests.errors import Interrupted, ProcessError

logger = logging.getLogger("poolcheck.processes")


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], bool] | None = None,
    cancelled: Callable[[], bool] | None = None,
    log_path: Path | None = None,
) -> float:
    """Poll `check` until it returns true; return the seconds it took.

    `alive` lets the caller fail fast when the process being waited for has
    already died, instead of waiting out the whole deadline; the error then
    names `log_path`, where the process said why.
    """
    start = time.monotonic()
    deadline = start + timeout
    while True:
        if cancelled is not None and cancelled():
            raise Interrupted(f"interrupted while waiting for {what}")
        if check():
            return time.monotonic() - start
        if alive is not None and not alive():
            raise ProcessError(f"{what}: the process exited before it was ready", name=what, log_path=log_path)
        if time.monotonic() >= deadline:
            raise ProcessError(f"{what}: not ready after {timeout:g} s", name=what, log_path=log_path)
        time.sleep(interval)


_PR_SET_PDEATHSIG = 1


def _die_with_parent(signum: int) -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to signal the child when the harness dies.

    A runner killed with SIGKILL cannot stop its children; with this they stop
    themselves (the next run still cleans up whatever remains, by recorded pid).
    """
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)

    return hook


def start_time(pid: int) -> float | None:
    """The process's start time: with the pid, it names a process unambiguously."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except Exception:  # gone already, or no such pid
        return None


class ManagedProcess:
    """A child process in its own process group, stopped on exit.

    Use as a context manager; on exit the group (or only its leader, for a
    supervisor) gets `stop_signal`, then the group gets SIGKILL after
    `stop_timeout` seconds.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        ready: Callable[[], bool] | None = None,
        ready_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        stop_signal: int = signal.SIGTERM,
        stop_leader_only: bool = False,
        cancelled: Callable[[], bool] | None = None,
        forced: Callable[[], bool] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = env
        self.cwd = cwd
        self.user = user
        self.ready = ready
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.stop_signal = stop_signal
        # A supervisor (gunicorn, postmaster) stops its own children in order;
        # signalling them all at once would cut that short.
        self.stop_leader_only = stop_leader_only
        self.cancelled = cancelled
        # Once `forced` is true (a second Ctrl-C) stop() kills without waiting.
        self.forced = forced or (lambda: False)
        self.started_at: float | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.ready_seconds: float | None = None

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ProcessError(f"{self.name} is not started", name=self.name)
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "ManagedProcess":
        logger.info("starting %s", self.name)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                process_group=0,
                preexec_fn=_die_with_parent(self.stop_signal),
            )
        self.started_at = start_time(self.process.pid)
        if self.ready is not None:
            try:
                self.ready_seconds = wait_until(
                    self.ready,
                    timeout=self.ready_timeout,
                    what=self.name,
                    alive=self.running,
                    cancelled=self.cancelled,
                    log_path=self.log_path,
                )
            except BaseException:
                self.stop()
                raise
        logger.info("%s ready (pid %d)", self.name, self.pid)
        return self

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for the child to exit by itself; None if it is still running."""
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def _wait_unless_forced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.forced():
            if self.wait(0.1) is not None:
                return True
        return False

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def stop(self, *, timeout: float | None = None) -> int | None:
        """SIGTERM the group, wait, then SIGKILL it; return the exit code."""
        if self.process is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if self.process.poll() is None:
            logger.info("stopping %s (pid %d)", self.name, self.process.pid)
            if self.stop_leader_only:
                self.process.send_signal(self.stop_signal)
            else:
                self.signal_group(self.stop_signal)
            if not self._wait_unless_forced(timeout):
                logger.warning("%s did not stop in %g s; killing it", self.name, timeout)
        # Kill the group even when the leader has exited: a child it forked may linger.
        self.signal_group(signal.SIGKILL)
        self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "ManagedProcess":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def child_env(**extra: str) -> dict[str, str]:
    """The harness's environment for a child, with `extra` on top.

    The sample app's settings (POOL_*, DATABASE_URL) are dropped: a child must
    get them from this run's config, never from whatever shell started poolcheck.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_", "DATABASE_URL"))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env
