"""PgBouncer's session pooling, and psycopg's prepare_threshold under transaction pooling: short real runs."""

from __future__ import annotations

import csv

import pytest

from conftest import leftover_processes, poolcheck, require
from loadtests.run.pgbouncer import binary

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_pgbouncer")]

WORKERS, POOL = 2, 3  # min_size = max_size: every worker holds 3 connections from its start to its end


@pytest.fixture(autouse=True)
def _pgbouncer_installed() -> None:
    require(binary() is not None, "pgbouncer is not installed (apt-get install pgbouncer; `make test` installs it)")


@pytest.fixture(scope="module")
def session_run(tmp_path_factory: pytest.TempPathFactory):
    results = tmp_path_factory.mktemp("pgbouncer-session") / "results"
    return poolcheck(
        "run", "--pgbouncer", "session", "--pgbouncer-pool-size", "10",
        "--workers", str(WORKERS), "--min-size", str(POOL), "--max-size", str(POOL), "--max-connections", "20",
        "--duration", "15", "--quiet-seconds", "4", "--burst-seconds", "6", "--burst-users", "12",
        results_dir=results, timeout=240,
    )


def _clients_from_the_pools(run) -> int:
    """The test's own count of PgBouncer's clients: the connections the workers' pools held (their /metrics)."""
    held: dict[str, int] = {}
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            held[row["timestamp"]] = held.get(row["timestamp"], 0) + int(float(row["pool_size"]))
    return max(held.values())


def test_session_pooling_gives_every_client_a_server_connection(session_run) -> None:
    run = session_run
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.json("summary.json")
    section = summary["pgbouncer"]
    assert section["pool_mode"] == "session"
    clients = _clients_from_the_pools(run)
    assert clients == WORKERS * POOL
    # Each client holds its server connection while connected: the server side equals the clients.
    assert section["peak_clients"] == clients
    assert section["peak_server_connections"] == clients
    assert summary["exact"]["peak"] == clients  # the server's own log, a source SHOW POOLS never saw
    assert leftover_processes(run) == []


def test_per_worker_peaks_are_not_attributed_and_the_last_lines_show_pgbouncer(session_run) -> None:
    run = session_run
    summary = run.json("summary.json")
    for section in (summary["exact"], summary["connections"]):
        assert section["peak_by_worker"] == {}
        assert "not attributable to workers behind PgBouncer" in section["peak_by_worker_note"]
    assert "not attributable" in (run.run_dir / "report.html").read_text()
    line = next(line for line in run.stdout.splitlines() if line.startswith("PgBouncer (session pooling): peak"))
    assert f"peak {WORKERS * POOL} clients of max_client_conn 100" in line
    assert f"peak {WORKERS * POOL} server connections of default_pool_size 10 + reserve_pool_size 0" in line
    assert "(server side 11 of 17 usable)" in line  # 10 + the collector; 20 - 3 superuser_reserved
    first = next(line for line in run.stdout.splitlines() if line.startswith("peak "))
    assert "budget 11 (PgBouncer server pools 10 + 1 harness)" in first  # the server's side, not 2 x 3 direct


def test_psycopg_prepare_threshold_fails_under_transaction_pooling(tmp_path) -> None:
    """psycopg prepares a query on its 5th run; the next transaction may get a server connection without it."""
    run = poolcheck(
        "run", "--pgbouncer", "transaction", "--pgbouncer-pool-size", "2", "--pool-kind", "async",
        "--prepared-statements", "--workers", "2", "--max-size", "4", "--max-connections", "20",
        "--duration", "15", "--quiet-seconds", "4", "--burst-seconds", "6", "--burst-users", "12",
        results_dir=tmp_path / "results", timeout=240,
    )
    summary = run.json("summary.json")
    assert run.returncode == 1, run.stdout + run.stderr
    assert summary["errors_by_class"].get("db_prepared_statement_lost", 0) > 0, summary["errors_by_class"]
    assert leftover_processes(run) == []
