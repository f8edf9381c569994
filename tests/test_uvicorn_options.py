"""`--server uvicorn` without a run: its command, the options it refuses, and README's drain figures."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.analysis.lifecycle import production_drain
from loadtests.config import RunConfig
from loadtests.run.app_hosts import _server_argv

README = Path(__file__).resolve().parents[1] / "README.md"


def test_uvicorn_hosts_run_the_factory_under_uvicorns_own_supervisor():
    argv = _server_argv(RunConfig(server="uvicorn", workers=3), 8123)
    assert argv[1:3] == ["-m", "uvicorn"] and "gunicorn" not in " ".join(argv)
    assert argv[argv.index("--factory") + 1] == "app.main:create_app"
    assert argv[argv.index("--workers") + 1] == "3" and argv[argv.index("--port") + 1] == "8123"
    assert "gunicorn" in _server_argv(RunConfig(), 8123)[2]  # the default stays gunicorn


def test_preload_under_uvicorn_is_refused_in_one_line_and_nothing_starts(tmp_path):
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "loadtests.cli", "run", "--server", "uvicorn", "--preload",
                           "--results-dir", str(results)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert "--preload is gunicorn's" in line and "Traceback" not in done.stderr
    assert not results.exists()
    with pytest.raises(ValueError, match="--preload is gunicorn's"):
        RunConfig(server="uvicorn", preload=True)


def test_readme_drain_table_is_the_harness_rule_at_the_teams_max_idle():
    text = README.read_text()
    section = text[text.index("## The team's server: `uvicorn --workers`"):]
    rows = re.findall(r"^\| (\d+) +\| (\d+) +\| ([\d.]+ \w+) +\| ([\d.]+ \w+) +\|$", section, re.M)
    assert len(rows) == 3
    for min_size, max_size, at_60, at_600 in rows:
        for max_idle, shown in ((60.0, at_60), (600.0, at_600)):
            drain = production_drain(peak_per_worker=int(max_size), min_size=int(min_size), max_size=int(max_size),
                                     prod_max_idle=max_idle)
            assert drain["predicted_drain"] == shown, (min_size, max_size, max_idle)
