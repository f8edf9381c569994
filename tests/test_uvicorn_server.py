"""The sample app under `uvicorn --workers N` (`--server uvicorn`), and max_lifetime left idle.

One real run, the field report's server: uvicorn's own supervisor with two
workers, each with a psycopg pool of 4 connections (min_size = max_size),
max_lifetime 2 s, max_idle 600 s, a quiet phase of 8 s before a short burst.
psycopg retires a connection for its age only when it comes back to the pool
(or is checked), so the connections that sit idle through the quiet phase
stay open at four times max_lifetime: the server's log shows their ages, and
the test's own count of the collector's samples (connections.csv) agrees.
"""

from __future__ import annotations

import csv
import psutil
import pytest

from conftest import RunResult, leftover_processes, poolcheck

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_uvicorn_server")]

WORKERS, POOL = 2, 4
MAX_LIFETIME, QUIET = 2.0, 8.0


@pytest.fixture(scope="module")
def uvicorn_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return poolcheck(
        "run", "--server", "uvicorn", "--workers", str(WORKERS), "--min-size", str(POOL), "--max-size", str(POOL),
        "--max-lifetime", str(MAX_LIFETIME), "--max-idle", "600", "--duration", "11", "--cycles", "1",
        "--quiet-seconds", str(QUIET), "--burst-seconds", "3", "--burst-users", "8", "--baseline-users", "0",
        results_dir=tmp_path_factory.mktemp("uvicorn") / "results",
    )


def _sampled_oldest(run: RunResult) -> tuple[float, float]:
    """The oldest backend and the longest-idle one the collector saw (connections.csv): the test's own count."""
    with open(run.run_dir / "connections.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return max(float(r["oldest_backend_s"]) for r in rows), max(float(r["oldest_idle_s"]) for r in rows)


def test_uvicorn_supervisor_runs_the_workers_and_stops_them(uvicorn_run):
    assert uvicorn_run.returncode == 0, uvicorn_run.stdout[-3000:] + uvicorn_run.stderr
    manifest = uvicorn_run.json("manifest.json")
    (supervisor,) = manifest["pids"]["uvicorn"]
    log = (uvicorn_run.run_dir / "uvicorn-h1.log").read_text()
    assert "Started parent process" in log  # uvicorn's multiprocess supervisor, not gunicorn
    assert not list(uvicorn_run.run_dir.glob("gunicorn-h*.log"))
    with open(uvicorn_run.run_dir / "workers.csv", newline="") as f:
        workers = {int(row["pid"]) for row in csv.DictReader(f)}
    assert len(workers) == WORKERS and supervisor not in workers
    # SIGTERM to the supervisor only: it stopped its workers, and each worker's lifespan closed its pool.
    for pid in workers:
        assert f"pool poolcheck-app:{pid} closed" in log
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert leftover_processes(uvicorn_run) == []


def test_max_lifetime_does_not_close_connections_idle_in_the_pool(uvicorn_run):
    ages = uvicorn_run.json("summary.json")["lifecycle"]["ages"]
    assert ages["source"] == "server log" and ages["max_lifetime_s"] == MAX_LIFETIME and ages["exceeded"] is True
    # The test's own count, sampled: a connection sat idle through the quiet phase, four times max_lifetime, open.
    oldest, longest_idle = _sampled_oldest(uvicorn_run)
    assert longest_idle > QUIET - 1 > 2 * MAX_LIFETIME
    assert QUIET < oldest <= ages["oldest_session_s"] + 0.5
    # The server log's ages: connections that lived past the quiet phase (those the burst used and gave back
    # after max_lifetime were retired then; the ones it left idle were not).
    logged_old = [s for s in ages["over_max_lifetime"] if s["age_s"] > QUIET]
    assert logged_old and ages["sessions_over_max_lifetime"] >= len(logged_old)
