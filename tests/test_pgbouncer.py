"""A real PgBouncer: the process, its SHOW POOLS samples, and one short run through it (transaction mode)."""

from __future__ import annotations

import csv
import json
import threading
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from conftest import leftover_processes, poolcheck, require
from loadtests.budget import PoolerSettings
from loadtests.run.pgbouncer import binary

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_pgbouncer")]


@pytest.fixture(autouse=True)
def _pgbouncer_installed() -> None:
    require(binary() is not None, "pgbouncer is not installed (apt-get install pgbouncer; `make test` installs it)")


def test_show_pools_samples_match_the_tests_own_count(tmp_path: Path) -> None:
    """Clients the test holds and server connections the server shows, against the sampler's CSV."""
    from loadtests.run.embedded_server import APP_ROLE, DATABASE, embedded_server
    from loadtests.run.pgbouncer import pgbouncer
    from loadtests.sources.pgbouncer_pools import read_pools, sample_forever
    from loadtests.sources.sampling_loop import SamplingLoop

    settings = PoolerSettings(pool_mode="transaction", default_pool_size=3, reserve_pool_size=0, max_client_conn=20)
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20}) as server:
        password = psycopg.conninfo.conninfo_to_dict(server.app_dsn)["password"]
        with pgbouncer(settings, run_dir=tmp_path, server_port=server.port, database=DATABASE, app_user=APP_ROLE,
                       app_password=password) as bouncer:
            clients = [psycopg.connect(bouncer.app_dsn, autocommit=True) for _ in range(6)]
            # Two clients inside a transaction: each holds a server connection; the other four hold none.
            for conn in clients[:2]:
                conn.execute("BEGIN")
                conn.execute("SELECT 1")
            with psycopg.connect(server.superuser_dsn) as superuser:
                (server_side,) = superuser.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND backend_type = 'client backend'",
                    (APP_ROLE,),
                ).fetchone()
            loop = SamplingLoop(interval=0.1, max_seconds=0.6)
            sampler = threading.Thread(target=sample_forever, kwargs={"dsn": bouncer.admin_dsn, "out_dir": tmp_path, "loop": loop})
            sampler.start()
            sampler.join(10)
            for conn in clients:
                conn.close()
            auth_dir = _auth_dir(tmp_path)
        assert not auth_dir.exists(), "the auth file's private directory outlived PgBouncer"
    rows = read_pools(tmp_path / "pgbouncer_pools.csv")
    assert len(rows) >= 3 and {r["database"] for r in rows} == {DATABASE}  # the admin console's pool left out
    last = rows[-1]
    assert last["cl_active"] + last["cl_waiting"] == 6
    assert last["sv_active"] == 2
    assert last["sv_active"] + last["sv_idle"] + last["sv_used"] + last["sv_login"] == server_side
    assert last["pool_mode"] == "transaction"


def _auth_dir(run_dir: Path) -> Path:
    """The private directory pgbouncer.ini names for its auth file."""
    for line in (run_dir / "pgbouncer.ini").read_text().splitlines():
        if line.startswith("auth_file"):
            return Path(line.split("=", 1)[1].strip()).parent
    raise AssertionError("pgbouncer.ini names no auth_file")


@pytest.fixture(scope="module")
def run_through_pgbouncer(tmp_path_factory: pytest.TempPathFactory):
    """2 workers x max_size 8 = 16 client connections; the server has 9 usable: only PgBouncer's 4 + 1 reach it."""
    results = tmp_path_factory.mktemp("pgbouncer-run") / "results"
    return poolcheck(
        "run", "--pgbouncer", "transaction", "--pgbouncer-pool-size", "4", "--pgbouncer-reserve-pool-size", "1",
        "--workers", "2", "--max-size", "8", "--max-connections", "12", "--no-prepared-statements",
        "--duration", "18", "--quiet-seconds", "5", "--burst-seconds", "6", "--burst-users", "24",
        results_dir=results, timeout=240,
    )


def test_run_through_pgbouncer_checks_both_levels(run_through_pgbouncer) -> None:
    run = run_through_pgbouncer
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PgBouncer clients: 1 hosts x 2 workers x 1 pools x max_size 8 + 1 admin = 17; max_client_conn 100; fits" in run.stdout
    assert "PgBouncer server pools: 1 database/user pair x (default_pool_size 4 + reserve_pool_size 1) + 1 extra = 6;" \
        " usable 9; fits" in run.stdout
    budget = run.json("summary.json")["pgbouncer"]["budget"]
    assert (budget["client_total"], budget["server_total"], budget["server_usable"]) == (17, 6, 9)
    assert budget["clients_fit"] and budget["server_fits"]
    assert run.json("manifest.json")["budget"]["total"] > 9  # directly, these pools would not fit
    section = run.json("summary.json")["pgbouncer"]
    assert (f"PgBouncer (transaction pooling): peak {section['peak_clients']} clients of max_client_conn 100,"
            f" up to {section['peak_clients_waiting']} waiting") in run.stdout
    assert "server connections of default_pool_size 4 + reserve_pool_size 1 (server side 6 of 9 usable)" in run.stdout
    # The verdict names what it counted against: PgBouncer's server pools (4 + 1), not the app's pools (16).
    assert any("within PgBouncer's server pools 5 and the usable limit 9" in r for r in run.json("summary.json")["reasons"])


def test_show_pools_csv_agrees_with_the_server_log(run_through_pgbouncer) -> None:
    """SHOW POOLS's server connections against the server's own log; its clients against the workers' pools."""
    run = run_through_pgbouncer
    summary = run.json("summary.json")
    section = summary["pgbouncer"]
    assert section["samples"] > 50
    exact = summary["exact"]["peak"]  # the server log's sessions: a source SHOW POOLS never saw
    assert section["peak_server_connections"] == exact
    assert 1 <= exact <= 5  # default_pool_size 4 + reserve 1
    assert summary["peak_connections"] <= 5  # the collector's pg_stat_activity samples: PgBouncer's connections only
    # The app's connections are PgBouncer's clients: more than reach the server, at most what the pools hold.
    assert exact < section["peak_clients"] <= 16
    # The workers' own pools (their /metrics) opened as many connections as PgBouncer counted clients.
    opened: dict[str, int] = {}
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            opened[row["timestamp"]] = opened.get(row["timestamp"], 0) + int(float(row["pool_size"]))
    assert exact < max(opened.values()) <= section["peak_clients"] + 2  # scraped once a second, sampled ten times
    connections = run.json("summary.json")["connections"]
    assert connections["peak_by_worker"] == {}  # server connections are PgBouncer's, never a worker's
    report = (run.run_dir / "report.html").read_text()
    assert "plot-pgbouncer" in report and "PgBouncer server pools" in report


def test_pgbouncer_stopped_and_no_password_kept(run_through_pgbouncer) -> None:
    run = run_through_pgbouncer
    assert leftover_processes(run) == []
    assert "pgbouncer" in run.json("manifest.json")["pids"]
    assert not _auth_dir(run.run_dir).exists()
    ini = (run.run_dir / "pgbouncer.ini").read_text()
    assert "password" not in ini.lower()
    assert not any(p.name.startswith("userlist") for p in run.run_dir.rglob("*"))


def _own_clients(run_dir: Path) -> list[tuple[float, int]]:
    """The test's own reading of pgbouncer_pools.csv: (epoch, cl_active + cl_waiting summed over the pools)."""
    clients: dict[str, int] = {}
    with open(run_dir / "pgbouncer_pools.csv", newline="") as f:
        for row in csv.DictReader(f):
            clients[row["timestamp"]] = clients.get(row["timestamp"], 0) + int(row["cl_active"]) + int(row["cl_waiting"])
    return sorted((datetime.fromisoformat(stamp).timestamp(), n) for stamp, n in clients.items())


def _at(steps: list[tuple[float, int]], moment: float) -> int:
    return [n for t, n in steps if t <= moment][-1]


def test_the_figures_behind_pgbouncer_are_its_clients_and_its_own(run_through_pgbouncer) -> None:
    """Drain, load spread and the live line read the app's pools where they are (PgBouncer's clients), never
    PgBouncer's server connections as if they were the workers'; checked against the test's own counts."""
    from own_counts import log_sessions

    run = run_through_pgbouncer
    summary = run.json("summary.json")
    drain = summary["lifecycle"]["drain"]
    burst = drain["bursts"][0]
    start = json.loads((run.run_dir / "locust_load.json").read_text())["started_at_epoch"]
    phase = next(p for p in run.json("manifest.json")["shape"] if p["phase"] == "burst")
    burst_start, burst_end = start + phase["start_s"], start + phase["end_s"]
    quiet_end = burst_end + burst["quiet_s"]
    clients = _own_clients(run.run_dir)
    # The pools' connections at the burst's peak and at the quiet phase's end, as SHOW POOLS counted its clients.
    assert burst["peak_total"] == max(n for t, n in clients if burst_start <= t <= burst_end) > 5
    assert burst["left_at_quiet_end"] == _at(clients, quiet_end)
    # Per worker, from the pools' own sizes (their /metrics), never 0 as the server's side would say.
    sizes: dict[str, int] = {}
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            sizes[row["pid"]] = max(sizes.get(row["pid"], 0), int(float(row["pool_size"])))
    assert burst["peak_per_worker"] == max(sizes.values()) > 1
    production = drain["production"]
    assert production["peak_per_worker"] == burst["peak_per_worker"]
    assert production["extra_per_worker"] == burst["peak_per_worker"] - 1  # min_size 1
    # The server side: PgBouncer's server connections (the server log, read here), closed by its own timer.
    server = [s for s in log_sessions(run.run_dir) if s.user == "app"]
    open_at_quiet_end = sum(1 for s in server if s.start <= quiet_end and (s.end is None or s.end > quiet_end))
    assert burst["server_side"]["left_at_quiet_end"] == open_at_quiet_end >= 1
    assert "server_idle_timeout = 600" in (run.run_dir / "pgbouncer.ini").read_text()
    assert burst["server_side"]["drain"].startswith(
        f"not measured behind PgBouncer: the {burst['quiet_s']:g} s quiet phase is shorter than server_idle_timeout 600 s")
    line = next(line for line in run.stdout.splitlines() if line.startswith("drain after burst 1"))
    assert line.startswith("drain after burst 1 (PgBouncer's clients):") and "in 0 s (predicted 0 s" not in line
    # Pools full together: the pools' count only; the server names no worker.
    assert summary["load_spread"]["workers_full_together_max"] is None
    spread = next(line for line in run.stdout.splitlines() if line.startswith("load spread"))
    assert "at most 0 of" not in spread and "as the pools counted" in spread
    # The live line: the server side's budget, the same as the last line's; never the app's pools (2 x 8 + 1).
    progress = [line for line in run.stdout.splitlines() if line.startswith("[") and "budget" in line]
    assert progress and all("/ budget 6 (PgBouncer server pools 5 + 1 harness) / usable 9" in line for line in progress)
    assert "(budget 6 (PgBouncer server pools 5 + 1 harness), usable 9" in run.stdout
