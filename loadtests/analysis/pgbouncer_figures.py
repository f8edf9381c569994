"""Behind PgBouncer: its pools as SHOW POOLS showed them, and the two levels of the budget.

The server's count (connections.csv) is PgBouncer's server connections; the
app's own connections are PgBouncer's clients, counted here from
pgbouncer_pools.csv (loadtests/sources/pgbouncer_pools.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from loadtests.analysis.folder import RunFolder
from loadtests.run_folder import epoch


@dataclass
class PoolerSeries:
    """SHOW POOLS summed over the app's pools, per sample, on the load's time axis."""

    t: list[float] = field(default_factory=list)
    clients: list[int] = field(default_factory=list)  # cl_active + cl_waiting: the app's connections to PgBouncer
    waiting: list[int] = field(default_factory=list)  # cl_waiting: clients queued for a server connection
    server: list[int] = field(default_factory=list)  # sv_active + sv_idle + sv_used + sv_login: PgBouncer's server connections
    maxwait_s: list[float] = field(default_factory=list)


def sum_by_sample(rows: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """One entry per sample (its timestamp): the counts summed over the database/user pools."""
    samples: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    # One row per pool and sample: the sampler can write a sample twice within the same millisecond
    # (a late tick catching up), which summed would count every client twice.
    pools = {(row["timestamp"], row["database"], row["user"]): row for row in rows}
    for row in pools.values():
        sample = samples[row["timestamp"]]
        sample["clients"] += row["cl_active"] + row["cl_waiting"]
        sample["waiting"] += row["cl_waiting"]
        sample["sv_active"] += row["sv_active"]
        sample["server"] += row["sv_active"] + row["sv_idle"] + row["sv_used"] + row["sv_login"]
        sample["maxwait_s"] = max(sample["maxwait_s"], row["maxwait_s"])
    return sorted(samples.items())


def pooler_series(folder: RunFolder, *, t0: float) -> PoolerSeries:
    out = PoolerSeries()
    for timestamp, sample in sum_by_sample(folder.pgbouncer_pools):
        out.t.append(round(epoch(timestamp) - t0, 3))
        out.clients.append(int(sample["clients"]))
        out.waiting.append(int(sample["waiting"]))
        out.server.append(int(sample["server"]))
        out.maxwait_s.append(round(sample["maxwait_s"], 3))
    return out


def pgbouncer_section(folder: RunFolder) -> dict[str, Any] | None:
    """summary.json's `pgbouncer` section; None for a run without PgBouncer."""
    recorded = folder.manifest.get("pgbouncer")
    if not recorded:
        return None
    samples = sum_by_sample(folder.pgbouncer_pools)
    peak = {name: max((s[name] for _, s in samples), default=0) for name in ("clients", "waiting", "sv_active", "server")}
    budget = recorded.get("budget", {})
    return {
        "version": recorded.get("version"),
        "pool_mode": recorded.get("pool_mode"),
        "samples": len(samples),
        "peak_clients": int(peak["clients"]),
        "peak_clients_waiting": int(peak["waiting"]),
        "peak_server_active": int(peak["sv_active"]),
        "peak_server_connections": int(peak["server"]),
        "max_wait_s": round(max((s["maxwait_s"] for _, s in samples), default=0.0), 3),
        "budget": budget,
        # The server sees PgBouncer's connections: each carries the application_name of the
        # last client it served, so the server-side count names no worker.
        "attribution": "server connections are PgBouncer's; clients counted from SHOW POOLS",
    }


# The server names a connection by its application_name; a PgBouncer server connection keeps the
# name of whichever client set it last, so grouping the server's connections by it names no worker.
NOT_BY_WORKER = ("not attributable to workers behind PgBouncer: the server's connections are PgBouncer's server"
                 " connections, each carrying the application_name of the last client it served;"
                 " see the pgbouncer section for its clients and server connections")


def unattributed(figures: dict[str, Any]) -> dict[str, Any]:
    """A section's per-worker peaks dropped behind PgBouncer, with the reason in their place."""
    if "peak_by_worker" not in figures:
        return figures
    return {**figures, "peak_by_worker": {}, "peak_by_worker_note": NOT_BY_WORKER}


def pooler_reasons(section: dict[str, Any]) -> list[str]:
    """What fails a run behind PgBouncer beyond the server's own checks: its clients' level."""
    budget = section.get("budget", {})
    failing = []
    if budget and not budget.get("clients_fit", True):
        failing.append(
            f"PgBouncer's clients {budget['client_total']} exceed its max_client_conn {budget['max_client_conn']}:"
            " it refuses the rest (the run was allowed by --allow-overcommit)"
        )
    return failing


def pooler_line(section: dict[str, Any]) -> str:
    """The run's last lines behind PgBouncer: its clients, their wait, its server connections against its pools."""
    budget = section.get("budget") or {}
    pools = (f" of default_pool_size {budget['default_pool_size']} + reserve_pool_size {budget['reserve_pool_size']}"
             f" (server side {budget['server_total']} of {budget['server_usable']} usable)" if budget else "")
    clients = f" of max_client_conn {budget['max_client_conn']}" if budget else ""
    return (f"PgBouncer ({section.get('pool_mode')} pooling): peak {section['peak_clients']} clients{clients},"
            f" up to {section['peak_clients_waiting']} waiting, max wait {section['max_wait_s']:g} s;"
            f" peak {section['peak_server_connections']} server connections{pools}")
