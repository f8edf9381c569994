"""Rules on the pools' size against the load and the server: waiting, headroom, the usable limit, leaks."""

from __future__ import annotations

from typing import Any

from loadtests.analysis.advice.findings import FAILURE, INFO, WARNING, Finding, Known, finding, not_known
from loadtests.analysis.advice.sizing import Demand, SizeAdvice, largest_fitting, pool_demand, size_for, stuck_pool
from loadtests.analysis.headroom import headroom_of

QUEUED_SHARE = 0.05  # requests that waited for a connection, from which the wait is worth a change
QUEUED_MEAN_WAIT_MS = 5.0  # ... and their mean wait: a queue served within a few ms costs nothing
UNEVEN = 2.0  # the busiest worker served at least this many times an even share of the requests


def pool_wait(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """Requests queued for a connection: raise max_size to what the busiest pool wanted, within the headroom."""
    pool = summary.get("pool") or {}
    if not pool.get("available") or not pool.get("requests_total"):
        return []
    queued, total = int(pool["requests_queued"]), int(pool["requests_total"])
    share = queued / total
    mean_wait = pool["wait_ms_total"] / queued if queued else 0.0
    if share < QUEUED_SHARE or mean_wait < QUEUED_MEAN_WAIT_MS:
        return []
    demand = pool_demand(pool)
    size = stuck_pool(summary, known) or _growth(pool, known, demand) or size_for(summary, known, demand=demand, target=target)
    uneven = _uneven(pool)
    figure = {
        "requests_queued": queued,
        "requests_total": total,
        "queued_share": round(share, 4),
        "mean_wait_ms": round(mean_wait, 1),
        "requests_waiting_max": int(pool["requests_waiting_max"]),
        **(demand.as_dict() if demand else {}),
        **uneven,
    }
    return [finding(
        "pool_wait", WARNING, figure=figure, setting=size.setting, suggested=size.suggested,
        why=f"{share * 100:.0f} % of requests waited for a connection, {mean_wait:.0f} ms on average"
        f" (psycopg counts waits, not their percentiles). {size.why}" + _uneven_why(uneven),
        text=f"pools: {queued} of {total} requests ({share * 100:.0f} %) waited for a connection, mean"
        f" {mean_wait:.0f} ms, up to {pool['requests_waiting_max']} waiting in one pool -> {size.change}"
        + (f" (uneven load: one worker served {uneven['busiest_worker_requests_share'] * 100:.0f} % of the requests)"
           if uneven else ""),
    )]


def _growth(pool: dict[str, Any], known: Known, demand: Demand | None) -> SizeAdvice | None:
    """Requests waited only in pools still below max_size: they waited for connections being opened."""
    max_size, min_size = known.get("max_size"), known.get("min_size")
    queued = [w for w in (pool.get("per_worker") or {}).values() if w["requests_queued"]]
    if demand is None or max_size is None or min_size is None or not queued:
        return None
    if any(int(w["pool_size_max"]) >= int(max_size) for w in queued):
        return None
    suggested = max(min(demand.per_worker, int(max_size)), int(min_size) + 1)
    return SizeAdvice(
        "min_size", suggested, f"raise min_size {min_size} -> {suggested}: the pools never reached max_size {max_size}",
        f"The pools that queued never reached max_size {max_size}: requests waited while connections were opened"
        " one at a time; connections kept open by min_size are ready when the burst comes.",
    )


def _uneven(pool: dict[str, Any]) -> dict[str, Any]:
    """The busiest worker's share of the requests, when it is at least UNEVEN times an even share."""
    per_worker = pool.get("per_worker") or {}
    total = sum(int(w["requests_total"]) for w in per_worker.values())
    if len(per_worker) < 2 or not total:
        return {}
    busiest = max(sorted(per_worker), key=lambda pid: per_worker[pid]["requests_total"])
    share = int(per_worker[busiest]["requests_total"]) / total
    if share < UNEVEN * (1 / len(per_worker)):
        return {}
    return {"busiest_worker_requests_share": round(share, 3), "even_share": round(1 / len(per_worker), 3)}


def _uneven_why(uneven: dict[str, Any]) -> str:
    if not uneven:
        return ""
    return (f" The load was uneven: one worker served {uneven['busiest_worker_requests_share'] * 100:.0f} % of the"
            f" requests (an even share is {uneven['even_share'] * 100:.0f} %): a keep-alive client stays with one"
            " worker, so some pools queue while others idle; fewer workers with larger pools share connections better.")


def headroom(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """Every pool full would leave less than `target` of the usable connections free."""
    missing = known.missing("hosts", "workers") + ([] if summary["budget"].get("pool_sizes") else known.missing("max_size"))
    room = headroom_of(summary, other_clients=int(known.config.get("other_clients") or 0), target=target)
    if not room.below_target:
        return []
    if missing and room.pgbouncer_pool_size is None:
        return [finding("headroom", WARNING, figure=room.as_dict(), setting=None, suggested=None,
                        why="The budget was computed with settings nobody declared.",
                        text=f"headroom: {not_known(missing)}")]
    share = (f"{room.free} of {room.usable} usable connections ({room.share * 100:.1f} %) left free with every pool full"
             if room.free >= 0 else f"every pool full holds {room.deployed} connections, {-room.free} above the {room.usable} usable")
    if room.pgbouncer_pool_size is not None:
        # Behind PgBouncer the app's pools are its clients: only its server pools count against the server.
        share = share.replace("every pool full", "PgBouncer's server pools full")
        setting, suggested = "pgbouncer_pool_size", room.pgbouncer_pool_size or None
        change = (f"PgBouncer default_pool_size {room.pgbouncer_pool_size}, the largest that keeps it"
                  if room.pgbouncer_pool_size else "a smaller PgBouncer reserve_pool_size, or fewer other clients")
    elif summary["budget"].get("pool_sizes"):
        setting, suggested = "pool_sizes", f"at most {room.largest_per_worker} per worker in all"
        change = f"pools of at most {room.largest_per_worker} connections per worker in all"
    elif room.largest_max_size:
        setting, suggested = "max_size", room.largest_max_size
        change = f"max_size {room.largest_max_size}, the largest that keeps it"
        if room.largest_workers:
            change += f" (or {room.largest_workers} workers per host at max_size {known.get('max_size')})"
    else:
        setting, suggested = "workers", room.largest_workers or None
        change = f"{room.largest_workers} workers per host" if room.largest_workers else "fewer hosts"
    return [finding(
        "headroom", WARNING, figure=room.as_dict(), setting=setting, suggested=suggested,
        why=f"{share.capitalize()}, below the {target * 100:g} % target: another client, a migration or a"
        " restarted host's new pools would have no room; the verdict changes only when the threshold is enforced.",
        text=f"headroom: {share}, below {target * 100:g} % -> {change}",
    )]


def usable_limit(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """The server refused connections, or the peak reached its usable limit."""
    exact = summary.get("exact") or {}
    refusals = int(exact.get("refusals") or 0) if exact.get("available") else 0
    harness = int(summary["budget"]["extra_clients"]) - int(known.config.get("other_clients") or 0)
    peak, usable = int(summary["peak_connections"]), int(summary["server"]["usable"])
    if not refusals and peak + harness < usable:
        return []
    size = largest_fitting(summary, known, target=target)
    seen = (f"the server refused {refusals} connection attempts" if refusals
            else f"peak {peak} + {harness} of the harness reached the usable {usable}")
    return [finding(
        "usable_limit", FAILURE if refusals else WARNING,
        figure={"peak": peak, "harness_clients": harness, "usable": usable, "refusals": refusals},
        setting=size.setting, suggested=size.suggested, why=size.why, text=f"server: {seen} -> {size.change}",
    )]


def over_budget(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """More connections than the pools may hold: a pool nobody declared, or connections that outlived their worker."""
    # The app's own peak: other clients' connections are counted against --other-clients, not the pools.
    connections = summary.get("connections") or {}
    peak = int(connections.get("app_peak", summary["peak_connections"]))
    pools_total = int(summary["budget"]["pools_total"])
    if peak <= pools_total:
        return []
    own = known.own_app
    kept = int((summary.get("proxy") or {}).get("backends_left_open") or 0)
    if kept:
        # A silent cut: the server never heard of it and keeps the backend while the pool opens a new connection.
        return [finding(
            "over_budget", WARNING, figure={"peak": peak, "pools_total": pools_total, "backends_left_open": kept},
            setting="tcp_keepalives_idle", suggested=None,
            why="The proxy cut connections silently: their backends stayed on the server, holding slots, while the"
            " pools opened new connections; a server learns of a vanished client only by its TCP keepalives"
            " (2 h by default) or idle_session_timeout.",
            text=f"connections: peak {peak} above the pools' budget {pools_total}; the server still held {kept}"
            " backends of silently cut connections at the end -> on the server, tcp_keepalives_idle, _interval and"
            " _count (they end a backend whose client is gone), or an idle_session_timeout above the pools' max_idle",
        )]
    return [finding(
        "over_budget", WARNING, figure={"peak": peak, "pools_total": pools_total},
        setting="pool_sizes" if own else None, suggested=None,
        why="The budget counts hosts x workers x max_size; more connections mean a pool it does not count"
        + (" (declare every pool of a worker with --pool)" if own else "")
        + ", a pool opened before the fork, or connections of dead workers still open.",
        text=f"connections: peak {peak} above the pools' budget {pools_total} -> "
        + ("declare every pool with --pool KIND:max=N, and check for pools opened before the fork" if own
           else "open pools in each worker (not before the fork) and close them at exit"),
    )]


def nothing_to_change(findings: list[Finding]) -> list[Finding]:
    if any(f["severity"] != INFO for f in findings):
        return []
    return [finding("nothing_to_change", INFO, figure={}, setting=None, suggested=None,
                    why="No rule found waiting requests, low headroom, refused connections, failures, a blocked"
                    " event loop or connections that outlived their settings.",
                    text="nothing needs to change: the pools fit the server and served the load without waiting")]
