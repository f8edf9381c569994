"""The tests' own process-table watch (tests/own_counts.py) records a child by what it became after its exec."""

from __future__ import annotations

import subprocess
import sys

import psutil

from own_counts import Watch
from loadtests.run.processes import wait_until

# A parent whose child, once forked, waits for a file and then execs into a command of its own:
# between the fork and the exec it shows the parent's command line, as a gunicorn master does for a moment.
PARENT = """
import os, sys, time
pid = os.fork()
if pid == 0:
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.01)
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(30)", "after-exec"])
os.waitpid(pid, 0)
"""


def test_a_child_seen_before_its_exec_is_recorded_as_what_it_became(tmp_path):
    go = tmp_path / "go"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(go)])
    watch = object.__new__(Watch)  # the watch's process table alone, without a run
    watch.runner, watch.processes = parent, {}
    try:
        wait_until(lambda: bool(psutil.Process(parent.pid).children()), timeout=10, what="the forked child")
        watch._look_at_processes()
        (before,) = watch.processes.values()
        assert "after-exec" not in before.cmdline
        go.touch()
        (child,) = psutil.Process(parent.pid).children()
        wait_until(lambda: "after-exec" in child.cmdline(), timeout=10, what="the child's exec")
        watch._look_at_processes()
        (after,) = watch.processes.values()
        assert after.cmdline[-1] == "after-exec" and after.first_seen == before.first_seen
    finally:
        for process in psutil.Process(parent.pid).children():
            process.kill()
        parent.kill()
        parent.wait()
