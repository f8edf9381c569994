"""Real runs: embedded PostgreSQL, gunicorn workers, Locust. Tens of seconds each."""

import pytest

from conftest import leftover_processes, poolcheck

pytestmark = pytest.mark.slow

SHORT = ["--duration", "20", "--quiet-seconds", "5", "--burst-seconds", "6", "--burst-users", "24"]


def test_short_run_passes_within_budget(results_dir):
    workers, max_size, interval = 3, 4, 0.1
    run = poolcheck(
        "run", *SHORT, "--workers", str(workers), "--max-size", str(max_size),
        "--sample-interval", str(interval), results_dir=results_dir,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    connections = summary["connections"]
    # Samples at the requested rate over the whole run.
    assert connections["mean_interval_s"] == pytest.approx(interval, rel=0.25)
    assert connections["samples"] >= 0.8 * 20 / interval
    assert len(connections["workers_seen"]) == workers
    assert 0 < summary["peak_connections"] <= workers * max_size
    assert summary["verdict"] == "pass"
    assert summary["requests"]["total"] > 100 and summary["requests"]["failures"] == 0
    assert (results_dir / "latest").resolve() == run.run_dir.resolve()
    assert leftover_processes(run) == []


def test_overcommit_fails_at_the_server_limit(results_dir):
    run = poolcheck(
        "run", *SHORT, "--workers", "4", "--max-size", "12", "--min-size", "1",
        "--max-connections", "20", "--pool-timeout", "2", "--burst-users", "48", "--hold-ms", "400",
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
