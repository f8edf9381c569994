"""Two runs at once on one machine (two terminals, or the suite's two test processes)."""

from __future__ import annotations

import pwd
import subprocess

from loadtests.run.embedded_server import _ensure_user


def test_a_system_user_another_run_added_meanwhile_is_no_error():
    """Both runs found the server's system user missing; the other one's useradd won."""
    calls = []

    def useradd_lost_the_race(name: str) -> None:
        calls.append(name)
        raise subprocess.CalledProcessError(9, ["useradd", name], stderr=f"useradd: user '{name}' already exists")

    existing = pwd.getpwuid(0).pw_name
    _ensure_user(existing, useradd_lost_the_race)
    assert calls == [existing]
