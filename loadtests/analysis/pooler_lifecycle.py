"""Connection lifecycle behind PgBouncer: the app's pools drain on PgBouncer's client side, the server's on its own.

Behind PgBouncer the server's connections are PgBouncer's server connections,
never a worker's; the app's pools are PgBouncer's clients. So the drain after
a burst is measured where the pools' connections can be seen:

- in all, PgBouncer's clients from SHOW POOLS (`cl_active + cl_waiting`, every
  sample of pgbouncer_pools.csv), else the pools' own sizes summed;
- per worker, each pool's size from its /metrics (pool_stats.csv, once a second).

The server side follows PgBouncer's own timers: it closes a server connection
idle for `server_idle_timeout`, whatever the app's pools do. A quiet phase
shorter than that cannot show it: the figures say so rather than call a count
that never had the time to fall a drain.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.lifecycle import Steps, max_between, value_at
from loadtests.analysis.pgbouncer_figures import sum_by_sample
from loadtests.run_folder import epoch

CLIENTS_SOURCE = "PgBouncer's clients (SHOW POOLS); per worker, its pool's size (pool_stats.csv)"
POOLS_SOURCE = "the pools' sizes (pool_stats.csv): no SHOW POOLS sample was recorded"
AGES_NOT_MEASURED = ("not measured behind PgBouncer: the app's connections end at PgBouncer (they are its clients)"
                     " and no source records their ages; the server's connections are PgBouncer's server"
                     " connections, held against its server_lifetime")


def client_steps(pool_rows: list[dict[str, Any]]) -> Steps:
    """PgBouncer's clients over time: the app's connections to it, summed over its pools at each sample."""
    return [(epoch(timestamp), int(sample["clients"])) for timestamp, sample in sum_by_sample(pool_rows)]


def pool_steps(stats: list[dict[str, Any]], *, figure: str = "size") -> dict[str, Steps]:
    """Each worker's pool over time, by pid: its size (`size`) or its connections in use (`busy`)."""
    out: dict[str, Steps] = defaultdict(list)
    for row in stats:
        value = row["pool_size"] if figure == "size" else row["pool_size"] - row["pool_available"]
        out[str(row["pid"])].append((epoch(row["timestamp"]), int(value)))
    return {pid: sorted(steps) for pid, steps in sorted(out.items())}


def summed(per_worker: dict[str, Steps]) -> Steps:
    """The workers' steps added up at every moment any of them changed (hosts are scraped at different moments)."""
    moments = sorted({at for steps in per_worker.values() for at, _ in steps})
    return [(at, sum(value_at(steps, at) for steps in per_worker.values())) for at in moments]


def app_side(folder: RunFolder) -> tuple[Steps, dict[str, Steps], Steps, str]:
    """(the app's connections in all, per worker, in use, and where they were read) behind PgBouncer."""
    per_worker = pool_steps(folder.pool_stats)
    busy = summed(pool_steps(folder.pool_stats, figure="busy"))
    clients = client_steps(folder.pgbouncer_pools)
    if clients:
        return clients, per_worker, busy, CLIENTS_SOURCE
    return summed(per_worker), per_worker, busy, POOLS_SOURCE


def server_timers(manifest: dict[str, Any]) -> tuple[float | None, float | None]:
    """PgBouncer's server_idle_timeout and server_lifetime as the run set them; None: not recorded (older runs)."""
    recorded = manifest.get("pgbouncer") or {}
    return recorded.get("server_idle_timeout"), recorded.get("server_lifetime")


def server_side_after(window: tuple[float, float, float], *, server: Steps, quiet_s: float,
                      server_idle_timeout: float | None) -> dict[str, Any]:
    """PgBouncer's server connections over one burst and its quiet phase, and whether its timer could close them."""
    start, end, _ = window
    quiet_end = end + quiet_s
    figures: dict[str, Any] = {
        "peak": max_between(server, start, end),
        "left_at_quiet_end": value_at(server, quiet_end),
        "server_idle_timeout_s": server_idle_timeout,
    }
    if server_idle_timeout is None:
        return {**figures, "drain": "not known: PgBouncer's server_idle_timeout was not recorded"}
    if quiet_s < server_idle_timeout:
        return {**figures, "drain": f"not measured behind PgBouncer: the {quiet_s:g} s quiet phase is shorter than"
                                    f" server_idle_timeout {server_idle_timeout:g} s, the earliest PgBouncer closes"
                                    " an idle server connection"}
    return {**figures, "drain": f"closed by PgBouncer's server_idle_timeout {server_idle_timeout:g} s:"
                                f" {figures['peak'] - figures['left_at_quiet_end']} of {figures['peak']} in the quiet phase"}


def production_server_side(server_idle_timeout: float | None, server_lifetime: float | None) -> str:
    """What closes PgBouncer's server connections after a burst in production (its timers, not the app's max_idle)."""
    if server_idle_timeout is None:
        return "not known: PgBouncer's server_idle_timeout was not recorded"
    lifetime = f"; none lives past server_lifetime {server_lifetime:g} s once released" if server_lifetime else ""
    return (f"PgBouncer closes each server connection left idle for server_idle_timeout {server_idle_timeout:g} s"
            f" (it reuses the most recently used first, so those the quiet load does not need go idle){lifetime}")


def pooler_ages(*, server_sessions_oldest_s: float | None, rows: list[dict[str, Any]], max_lifetime: float | None,
                server_lifetime: float | None, source: str) -> dict[str, Any]:
    """Ages behind PgBouncer: the pools' against max_lifetime cannot be seen; PgBouncer's against server_lifetime."""
    oldest_sampled = max((r["oldest_backend_s"] for r in rows), default=0.0)
    oldest = oldest_sampled if server_sessions_oldest_s is None else server_sessions_oldest_s
    return {
        "max_lifetime_s": max_lifetime,
        "oldest_sampled_s": round(oldest_sampled, 3),
        "source": source,
        "exceeded": None,
        "not_measured": AGES_NOT_MEASURED,
        "server_side": {
            "oldest_s": round(oldest, 3),
            "server_lifetime_s": server_lifetime,
            "exceeded": None if server_lifetime is None else oldest > server_lifetime,
        },
    }
