"""Distributed load: a Locust master with 2 local workers, one set of statistics, one summary."""

import csv

import pytest

from conftest import leftover_processes, poolcheck

pytestmark = pytest.mark.slow


def test_two_local_locust_workers_make_one_set_of_statistics(results_dir):
    run = poolcheck(
        "run", "--locust-workers", "2", "--workers", "2", "--max-size", "4",
        "--duration", "14", "--quiet-seconds", "4", "--burst-seconds", "5", "--burst-users", "16",
        results_dir=results_dir,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    manifest, summary = run.json("manifest.json"), run.json("summary.json")
    assert len(manifest["pids"]["locust-worker"]) == 2 and len(manifest["pids"]["locust"]) == 1

    # Both workers joined the master before the shape started; only the master wrote CSV files.
    master_log = (run.run_dir / "locust.log").read_text()
    assert "2 workers connected" in master_log
    assert sorted(p.name for p in run.run_dir.glob("locust-worker-*")) == [
        "locust-worker-1.log", "locust-worker-1.out", "locust-worker-2.log", "locust-worker-2.out",
    ]
    with open(run.run_dir / "locust_stats.csv", newline="") as f:
        assert [row["Name"] for row in csv.DictReader(f)].count("Aggregated") == 1
    with open(run.run_dir / "locust_stats_history.csv", newline="") as f:
        users = [int(row["User Count"]) for row in csv.DictReader(f)]
    assert max(users) == 16  # the burst, spread over both workers by the master

    assert summary["verdict"] == "pass" and "verdict: PASS" in run.stdout
    assert (run.run_dir / "report.html").is_file()
    assert summary["requests"]["total"] > 100 and summary["requests"]["failures"] == 0
    assert 0 < summary["peak_connections"] <= 2 * 4
    assert leftover_processes(run) == []
