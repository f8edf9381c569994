"""poolcheck's version, and the format version of the files a run writes."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from loadtests.run_folder import SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]


def test_version_option_prints_the_installed_release():
    # The console script a set-up puts beside the interpreter, run as a user runs it.
    script = Path(sys.executable).with_name("poolcheck")
    done = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"poolcheck, version {metadata.version('poolcheck')}"


def test_results_readme_names_the_current_schema_version():
    text = (ROOT / "results" / "README.md").read_text()
    assert re.search(r"`schema_version` \(now `(\d+)`\)", text)[1] == str(SCHEMA_VERSION)


@pytest.mark.slow
def test_run_folder_records_its_schema_and_poolcheck_version(short_run):
    assert short_run.returncode == 0, short_run.stdout + short_run.stderr
    manifest, summary = short_run.json("manifest.json"), short_run.json("summary.json")
    assert manifest["schema_version"] == summary["schema_version"] == SCHEMA_VERSION
    assert manifest["versions"]["poolcheck"] == metadata.version("poolcheck")
