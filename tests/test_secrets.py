"""A password given in a DSN never reaches results, logs, reports or the terminal."""

from __future__ import annotations

import pytest

from conftest import poolcheck
from loadtests.run.embedded_server import embedded_server

pytestmark = pytest.mark.slow


def test_dsn_password_is_nowhere_in_the_run(tmp_path, results_dir):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 30}) as server:
        password = server.passwords[0]
        run = poolcheck(
            "run", "--dsn", server.superuser_dsn, "--duration", "6", "--workers", "2", "--max-size", "3",
            "--quiet-seconds", "2", "--burst-seconds", "3", results_dir=results_dir,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert password not in run.stdout + run.stderr
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    assert len(files) > 5
    leaks = [p.name for p in files if password in p.read_text(errors="replace")]
    assert leaks == []
    manifest = run.json("manifest.json")
    assert "***" in manifest["config"]["dsn"]
    # Read-only on a --dsn server: limits come from the server, nothing was changed there.
    assert manifest["server"]["embedded"] is False
    assert run.json("summary.json")["server"]["max_connections"] == 30
