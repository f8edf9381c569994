"""The suite's own premise: tests that share one real run (an `xdist_group` mark) run in one test process.

`make test` runs two processes with `--dist loadgroup`; a module-scoped run is
made once only if every test of its group lands in the same process. When a
pytest and pytest-xdist pairing breaks the grouping, nothing fails by itself:
each shared run is simply made twice, and the suite grows by minutes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

GROUPED = '''
import os
import pytest

pytestmark = pytest.mark.xdist_group("shared_run")


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory):
    with open(os.environ["SETUPS_FILE"], "a") as f:
        f.write(f"{os.getpid()}\\n")


@pytest.mark.parametrize("n", range(8))
def test_reads_the_shared_run(shared_run, n):
    pass
'''


def test_a_group_runs_in_one_process_and_sets_up_its_run_once(tmp_path: Path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    setups = tmp_path / "setups.txt"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider", "-q",
         "--rootdir", str(tmp_path), str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
        env={**os.environ, "SETUPS_FILE": str(setups)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "8 passed" in done.stdout
    assert len(setups.read_text().splitlines()) == 1, "the group's run was set up in more than one process"
