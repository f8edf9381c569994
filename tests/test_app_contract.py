"""The sample app answers bad requests with 4xx, never 500: schemathesis against its OpenAPI schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.run.processes import ManagedProcess
from loadtests.run.app_hosts import every_worker_healthy
from loadtests.run.embedded_server import embedded_server, free_port

pytestmark = pytest.mark.slow

APP_DIR = Path(__file__).resolve().parent.parent / "app"


def test_no_request_makes_the_app_fail_with_500(tmp_path):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20}) as server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "DATABASE_URL": server.app_dsn, "HOLD_MAX_MS": "50", "POOL_MAX_SIZE": "4"}
        argv = [sys.executable, "-m", "gunicorn", "-c", str(APP_DIR / "gunicorn.conf.py"), "--workers", "1",
                "--bind", f"127.0.0.1:{port}", "app.main:create_app()"]
        with ManagedProcess("app", argv, log_path=tmp_path / "app.log", env=env,
                            ready=every_worker_healthy(url, 1), stop_leader_only=True):
            done = subprocess.run(
                [sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
                 "--checks", "not_a_server_error", "--max-examples", "40", "--generation-deterministic",
                 "--request-timeout", "5", "--no-color"],
                capture_output=True, text=True, timeout=180, cwd=tmp_path,  # it keeps a cache in its cwd
            )
    assert done.returncode == 0, done.stdout[-4000:]
    assert "No issues found" in done.stdout
    assert "Tested: 6" in done.stdout  # every operation of the schema was exercised
