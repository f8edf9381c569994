"""Real runs: embedded PostgreSQL, gunicorn workers, Locust. Tens of seconds each."""

import re

import pytest

from conftest import SHORT_RUN, leftover_processes, poolcheck

pytestmark = pytest.mark.slow


def test_short_run_passes_within_budget(short_run):
    workers, max_size, interval = 3, 4, 0.1
    assert short_run.returncode == 0, short_run.stdout + short_run.stderr
    summary = short_run.json("summary.json")
    connections = summary["connections"]
    # Samples at the requested rate over the whole run: never faster than asked; slower by at most
    # half as much again (the collector sleeps to the next deadline, so only a sample that takes
    # longer than 0.1 s, on a machine busy with 3 workers, Locust and other runs, makes it late).
    assert interval * 0.95 <= connections["mean_interval_s"] <= interval * 1.5
    assert connections["samples"] >= 20 / (interval * 1.5)
    assert len(connections["workers_seen"]) == workers
    assert 0 < summary["peak_connections"] <= workers * max_size
    assert summary["verdict"] == "pass"
    assert summary["requests"]["total"] > 100 and summary["requests"]["failures"] == 0
    assert (short_run.results_dir / "latest").resolve() == short_run.run_dir.resolve()
    assert leftover_processes(short_run) == []


def test_run_folder_has_no_password(short_run):
    manifest = short_run.json("manifest.json")
    assert manifest["status"] == "finished"
    assert set(manifest["versions"]) >= {"python", "postgresql", "psycopg", "psycopg-pool", "locust", "fastapi", "uvicorn", "gunicorn"}
    # Any role's password, in a URL or a keyword DSN: only the mask may follow the user or `password=`.
    # (tests/test_own_counts.py searches for the run's actual passwords, read from its children.)
    unmasked = re.compile(r"postgres(?:ql)?://[^:/@\s]+:(?!\*\*\*@)[^@\s]+@|\bpassword\s*=\s*(?!\*\*\*)[^\s'\"]+")
    for path in short_run.run_dir.rglob("*"):
        if path.is_file():
            assert unmasked.search(path.read_text(errors="replace")) is None, path
    assert unmasked.search(short_run.stdout + short_run.stderr) is None


def test_overcommit_fails_at_the_server_limit(results_dir):
    run = poolcheck(
        "run", *SHORT_RUN, "--workers", "4", "--max-size", "12", "--min-size", "1",
        "--max-connections", "20", "--pool-timeout", "1", "--burst-users", "60", "--hold-ms", "1000",
        "--allow-overcommit", results_dir=results_dir,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.json("summary.json")
    assert summary["verdict"] == "fail"
    assert summary["errors_by_class"].get("db_too_many_connections", 0) > 0
    usable = summary["server"]["usable"]
    harness = summary["budget"]["extra_clients"]
    assert summary["peak_connections"] + harness >= usable
    assert leftover_processes(run) == []
