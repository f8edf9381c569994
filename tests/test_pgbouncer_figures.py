"""The figures of a run behind PgBouncer, from constructed run folders: the app's pools drain on PgBouncer's
client side (SHOW POOLS, the pools' sizes), the server's connections are PgBouncer's and follow its own timer,
and no figure counts the server's connections per worker.

The folder: 2 workers x max_size 4, min_size 1, max_idle 1 s; one burst from 5 s to 8 s of the load, a quiet
phase to 14 s. PgBouncer's clients rise from 2 to 8 and fall back to 2 at 11 s; its 3 server connections stay.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.load_spread import spread_line
from loadtests.analysis.sections import accounting_lines, lifecycle_figures
from loadtests.analysis.summary import summarize
from loadtests.run_folder import (CONNECTIONS_CSV, LOAD_JSON, MANIFEST, PGBOUNCER, PGBOUNCER_POOLS_CSV,
                                  POOL_STATS_CSV, iso_time, write_json)
from loadtests.sources import pgbouncer_pools, pool_stats
from loadtests.sources.collector import COLUMNS

LOAD_START = 1_795_306_340.0
SHAPE = [
    {"start_s": 0.0, "end_s": 5.0, "phase": "quiet", "users": 2},
    {"start_s": 5.0, "end_s": 8.0, "phase": "burst", "users": 24},
    {"start_s": 8.0, "end_s": 14.0, "phase": "quiet", "users": 2},
]
CONFIG = {"hosts": 1, "workers": 2, "min_size": 1, "max_size": 4, "max_idle": 1.0, "max_lifetime": 3600.0,
          "pool_kind": "async", "baseline_users": 2, "prod_max_idle": 600.0, "quiet_seconds": 6.0,
          "burst_seconds": 3.0, "sample_interval": 0.1, "other_clients": 0, "max_failure_ratio": 0.0}
POOLER_BUDGET = {"default_pool_size": 3, "reserve_pool_size": 0, "max_client_conn": 100, "pairs": 1,
                 "client_total": 9, "clients_fit": True, "server_pools": 3, "server_total": 4,
                 "server_usable": 37, "server_fits": True}
BUDGET = {"hosts": 1, "workers": 2, "max_size": 4, "pools_per_worker": 1, "extra_clients": 1, "pool_sizes": [],
          "max_overflow": None, "per_worker": 4, "per_host": 8, "pools_total": 8, "total": 9}


def _clients(t: float) -> int:
    """PgBouncer's clients: 2 (one a worker), 8 in the burst from 5.5 s, back to 2 at 11 s."""
    return 8 if 5.5 <= t < 11.0 else 2


def _pool_size(t: float) -> int:
    """Each worker's pool, scraped once a second: 4 in the burst, one closed per max_idle after it, then 1."""
    return 4 if 6.0 <= t < 9.0 else {9.0: 3, 10.0: 2}.get(t, 1)


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, object]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _folder(path: Path, *, timers: bool = True) -> RunFolder:
    recorded = {"version": "1.18.0", "pool_mode": "transaction", "budget": POOLER_BUDGET,
                **({"server_idle_timeout": 600.0, "server_lifetime": 3600.0} if timers else {})}
    write_json(path / MANIFEST, {
        "run_id": path.name, "app_name": "poolcheck-app:", "config": CONFIG, "shape": SHAPE, "budget": BUDGET,
        "server": {"embedded": True, "max_connections": 40, "superuser_reserved_connections": 3},
        "started_at": iso_time(LOAD_START - 1), "load_ended_at": iso_time(LOAD_START + 14.0), "status": "finished",
        "pgbouncer": recorded,
    })
    write_json(path / LOAD_JSON, {"started_at_epoch": LOAD_START})
    ticks = [round(n * 0.1, 1) for n in range(0, 150)]
    # The server sees PgBouncer's 3 server connections from the first second to the end, never a worker's.
    connections = []
    for t in ticks:
        held = 3 if t >= 1.0 else 0
        apps = {PGBOUNCER: {"idle": held}} if held else {}
        connections.append({"timestamp": iso_time(LOAD_START + t), "elapsed_s": f"{t + 1:.3f}", "total": held,
                            "active": 0, "idle": held, "idle_in_transaction": 0, "idle_in_transaction_aborted": 0,
                            "other": 0, "oldest_backend_s": t, "oldest_idle_s": 0.5, "query_ms": 1.0,
                            "by_application": json.dumps(apps)})
    _write_csv(path / CONNECTIONS_CSV, COLUMNS, connections)
    _write_csv(path / PGBOUNCER_POOLS_CSV, pgbouncer_pools.COLUMNS, [
        {"timestamp": iso_time(LOAD_START + t), "elapsed_s": t + 1, "database": "poolcheck", "user": "app",
         "cl_active": _clients(t), "cl_waiting": 0, "sv_active": 0, "sv_idle": 3, "sv_used": 0, "sv_login": 0,
         "maxwait_s": 0.0, "pool_mode": "transaction"} for t in ticks])
    stats = []
    for second in range(15):
        for pid in (11, 12):
            size = _pool_size(float(second))
            stats.append({**{c: 0 for c in pool_stats.COLUMNS}, "timestamp": iso_time(LOAD_START + second),
                          "elapsed_s": second + 1, "host": 1, "pid": pid, "pool_min": 1, "pool_max": 4,
                          "pool_size": size, "pool_available": size if second >= 8 else 0, "requests_num": 50 * pid})
    _write_csv(path / POOL_STATS_CSV, pool_stats.COLUMNS, stats)
    return RunFolder(path)


def test_the_pools_drain_is_measured_on_pgbouncers_client_side(tmp_path):
    drain = lifecycle_figures(_folder(tmp_path), log=None)["drain"]
    (burst,) = drain["bursts"]
    assert drain["behind_pgbouncer"] and drain["source"].startswith("PgBouncer's clients (SHOW POOLS)")
    # 8 clients at the burst's peak, 4 per worker from the pools; back at 2 x min_size 1 at 11 s, 3 s after the burst.
    assert (burst["peak_total"], burst["peak_per_worker"], burst["target"]) == (8, 4, 2)
    assert burst["drained"] and burst["drain_s"] == 3.0
    # The prediction uses the pools' real peak per worker: 3 above min_size, one per max_idle.
    assert (burst["predicted_s"], drain["production"]["extra_per_worker"]) == (3.0, 3)
    assert drain["production"]["predicted_drain"] == "30 min"


def test_the_server_side_follows_pgbouncers_timer_and_says_what_it_could_not_measure(tmp_path):
    drain = lifecycle_figures(_folder(tmp_path), log=None)["drain"]
    side = drain["bursts"][0]["server_side"]
    assert (side["peak"], side["left_at_quiet_end"], side["server_idle_timeout_s"]) == (3, 3, 600.0)
    assert side["drain"].startswith("not measured behind PgBouncer: the 6 s quiet phase is shorter than"
                                    " server_idle_timeout 600 s")
    assert "server_idle_timeout 600 s" in drain["production"]["server_side"]
    lines = accounting_lines({"lifecycle": {"drain": drain}})
    assert lines[0].startswith("drain after burst 1 (PgBouncer's clients): back at 2 connections in 3 s")
    assert "server side: PgBouncer's 3 server connections at the burst's peak, 3 at the quiet phase's end" in lines[0]
    assert "(PgBouncer's clients) take about 30 min" in lines[1] and "the server side: PgBouncer closes" in lines[1]
    unrecorded = lifecycle_figures(_folder(tmp_path, timers=False), log=None)["drain"]
    assert unrecorded["bursts"][0]["server_side"]["drain"] == "not known: PgBouncer's server_idle_timeout was not recorded"


def test_ages_and_pools_full_together_are_not_read_from_pgbouncers_server_connections(tmp_path):
    summary = summarize(_folder(tmp_path))
    ages = summary["lifecycle"]["ages"]
    assert ages["exceeded"] is None and ages["not_measured"].startswith("not measured behind PgBouncer")
    assert ages["server_side"]["server_lifetime_s"] == 3600.0 and not ages["server_side"]["exceeded"]
    spread = summary["load_spread"]
    assert spread["workers_full_together_max"] is None
    assert spread["workers_full_together_note"].startswith("not measured behind PgBouncer")
    assert spread["pools_full_together_max"] == 2  # both pools at max_size 4 in the scrapes at 6-8 s
    line = spread_line(spread)
    assert "at most 0" not in line and "as the pools counted, 2 of 2 at max_size (4 connections)" in line
    drain_advice = next(a for a in summary["advice"] if a["rule"] == "drain")
    assert drain_advice["setting"] is None and "nothing to change for the server" in drain_advice["text"]


def test_the_report_draws_pgbouncers_server_connections_as_one_band_and_the_clients_per_worker(tmp_path):
    from loadtests.present.report import budget_rows, render_report

    folder = _folder(tmp_path)
    page = render_report(folder)
    # The timeline's one view is PgBouncer's server connections; no view, legend or text names workers there.
    assert "PgBouncer's server connections by state" in page and "all workers by state" not in page
    assert "stacked by worker" not in page
    # The clients per worker, from each pool's size, stacked in the PgBouncer chart, in the workers' colours.
    assert page.count('"name":"worker 11: clients (its pool\'s size)"') == 1
    assert page.count('"name":"worker 12: clients (its pool\'s size)"') == 1
    # The ages the server shows are PgBouncer's server connections', against its timers; the drain is the clients'.
    assert "oldest PgBouncer server connection (s)" in page and "server_idle_timeout 600 s" in page
    assert "the pools back at min_size (PgBouncer's clients)" in page
    assert "Behind PgBouncer the\ndrain is the app's pools' on PgBouncer's client side" in page
    # The workers' table: connections as each pool counted them, 4 at the peak (not "-" from the server).
    assert "connections {}as each pool counted its own".format("") in page
    rows = {label: (value, note) for label, value, note in budget_rows(summarize(folder))}
    assert rows["headroom"][0] == "33"  # usable 37 - server side 4, not 37 - the direct budget 9
