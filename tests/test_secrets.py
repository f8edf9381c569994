"""A password given in a DSN never reaches results, logs, reports or the terminal."""

from __future__ import annotations

import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from conftest import poolcheck
from loadtests.run.embedded_server import embedded_server

pytestmark = pytest.mark.slow


def test_dsn_password_is_nowhere_in_the_run(tmp_path, results_dir):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 30}) as server:
        passwords = server.passwords  # the superuser's, given here, and the app role's
        # A keyword DSN, not a URL: the masking must not depend on the form.
        superuser = conninfo_to_dict(server.superuser_dsn)
        keyword_dsn = make_conninfo(**superuser)
        assert keyword_dsn.startswith("user=") or " password=" in keyword_dsn
        run = poolcheck(
            "run", "--dsn", keyword_dsn, "--duration", "6", "--workers", "2", "--max-size", "3",
            "--quiet-seconds", "2", "--burst-seconds", "3", results_dir=results_dir,
        )
        assert run.returncode == 0, run.stdout + run.stderr
    assert not any(p in run.stdout + run.stderr for p in passwords)
    files = [p for p in run.run_dir.rglob("*") if p.is_file()]
    assert len(files) > 5
    leaks = [f.name for f in files for p in passwords if p in f.read_text(errors="replace")]
    assert leaks == []
    manifest = run.json("manifest.json")
    assert "password=***" in manifest["config"]["dsn"]
    # Read-only on a --dsn server: limits come from the server, nothing was changed there.
    assert manifest["server"]["embedded"] is False
    assert run.json("summary.json")["server"]["max_connections"] == 30
