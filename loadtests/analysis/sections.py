"""The `exact`, `pool` and `lifecycle` sections of summary.json, from a run folder's files.

Reads the server log once and hands its sessions to each section; like the
rest of the summary, a pure function of the folder.
"""

from __future__ import annotations

import logging
from typing import Any

from loadtests.analysis import lifecycle, pooler_lifecycle
from loadtests.analysis.exact_counts import ClientLog, exact_figures, read_client_log, unavailable
from loadtests.analysis.folder import RunFolder
from loadtests.analysis.known_pools import known_pools
from loadtests.analysis.pgbouncer_figures import unattributed
from loadtests.run_folder import PGBOUNCER
from loadtests.sources.attribution import is_app_client
from loadtests.sources.pool_stats import LAG_COLUMN
from loadtests.sources.server_log import logs_sessions, messages_language_problem

logger = logging.getLogger("poolcheck.accounting")

# Counters are cumulative per worker: a worker's last scrape holds its totals.
_SUMMED = {
    "requests_num": "requests_total",
    "requests_queued": "requests_queued",
    "requests_wait_ms": "wait_ms_total",
    "requests_errors": "pool_timeouts",
    "returns_bad": "returns_bad",
    "connections_num": "connections_opened",
    "connections_ms": "connect_ms_total",
    "connections_errors": "connections_errors",
    "connections_lost": "connections_lost",
    "usage_ms": "usage_ms_total",
}


def accounting_sections(folder: RunFolder, *, sampled: dict[str, Any]) -> dict[str, Any]:
    log, reason = _client_log(folder)
    exact = exact_figures(log, sampled=sampled, origin=folder.clock_origin, app_prefix=folder.app_prefix) if log else None
    if exact is not None and folder.manifest.get("pgbouncer"):
        exact = unattributed(exact)
    return {
        "exact": exact or unavailable(reason),
        "pool": pool_figures(folder.pool_stats) or _no_pool_figures(folder),
        "lifecycle": lifecycle_figures(folder, log=log),
    }


def _client_log(folder: RunFolder) -> tuple[ClientLog | None, str]:
    try:
        log = read_client_log(folder)
    except ValueError as exc:  # a log_timezone this module cannot place
        return None, f"the server log cannot be read: {exc}"
    settings = folder.server_settings
    off = [name for name in ("log_connections", "log_disconnections") if not logs_sessions(settings, name)]
    if log is not None and off:
        # Without both records a session's start or end is missing: counts from such a log are not exact.
        return None, f"the server has {' and '.join(off)} off: the log cannot tell when sessions open and close"
    if log is not None and not log.sessions and not log.refusals and folder.connections and folder.connections[-1]["total"]:
        language = messages_language_problem(settings)
        return None, f"the server log ({log.source}) holds no connection records of the watched clients" + (
            f": {language}" if language else "")
    if log is not None:
        return log, ""
    if folder.embedded:
        return None, "the embedded server's log is missing from the run folder: only sampled figures exist"
    return None, "only sampled figures exist: pass --server-log PATH (the server's jsonlog, csvlog or stderr log) with --dsn for exact ones"


def _no_pool_figures(folder: RunFolder) -> dict[str, Any]:
    config = folder.manifest["config"]
    if config.get("target_url") is not None and not config.get("metrics_url"):
        reason = "your app's pools were not scraped: give --metrics-url URL of its Prometheus pool stats"
    elif config.get("target_url") is not None:
        reason = f"{config['metrics_url']} gave no pool stats the harness reads (see scraper.log)"
    else:
        reason = "the sample app's /metrics gave no pool stats (see scraper.log)"
    return {"available": False, "workers": 0, "reason": reason}


def pool_figures(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """Totals and maxima of every worker's pool, from pool_stats.csv rows; {} when there are none."""
    if not stats:
        return {}
    last: dict[int, dict[str, Any]] = {}
    for row in stats:
        last[row["pid"]] = row
    totals = {name: int(sum(row[column] for row in last.values())) for column, name in _SUMMED.items()}
    per_worker = {str(pid): _worker(pid, stats) for pid in sorted(last)}
    return {
        "available": True,
        "workers": len(last),
        "scrapes": len({row["timestamp"] for row in stats}),
        **totals,
        "requests_waiting_max": int(max(row["requests_waiting"] for row in stats)),
        "pool_size_max": int(max(row["pool_size"] for row in stats)),
        # Whether a waiting request had a connection it could have had (loop-mismatch: never).
        "available_while_waiting_max": int(max((row["pool_available"] for row in stats if row["requests_waiting"]),
                                               default=0)),
        # SQLAlchemy's QueuePool: connections open beyond pool_size in one worker (0 for pools without overflow)
        "overflow_max": int(max(row.get("overflow", 0) for row in stats)),
        "event_loop_lag_max_ms": round(max(row[LAG_COLUMN] for row in stats), 3),
        "per_worker": per_worker,
    }


def _worker(pid: int, stats: list[dict[str, Any]]) -> dict[str, Any]:
    mine = [row for row in stats if row["pid"] == pid]
    final = mine[-1]
    return {
        "requests_waiting_max": int(max(r["requests_waiting"] for r in mine)),
        "wait_ms_total": int(final["requests_wait_ms"]),
        "requests_queued": int(final["requests_queued"]),
        "requests_total": int(final["requests_num"]),
        "pool_timeouts": int(final["requests_errors"]),
        "connections_lost": int(final["connections_lost"]),
        "pool_size_max": int(max(r["pool_size"] for r in mine)),
        "overflow_max": int(max(r.get("overflow", 0) for r in mine)),
        "connections_opened": int(final["connections_num"]),
        "event_loop_lag_max_ms": round(max(r[LAG_COLUMN] for r in mine), 3),
    }


def lifecycle_figures(folder: RunFolder, *, log: ClientLog | None) -> dict[str, Any]:
    app_prefix = folder.app_prefix
    sessions = log.sessions if log else None
    return {
        "ages": _pooler_ages(folder, log=log) if _behind_pgbouncer(folder) else lifecycle.age_figures(
            sessions=[s for s in sessions if is_app_client(s.client, app_prefix)] if sessions is not None else None,
            log_end=log.ends_at if log else None,
            rows=folder.connections,
            max_lifetime=known_pools(folder.manifest).max_lifetime,
        ),
        "drain": _drain(folder, log=log),
        "orphans": lifecycle.orphan_figures(
            folder.workers, sessions=sessions, app_prefix=app_prefix, origin=folder.clock_origin
        ),
    }


def _behind_pgbouncer(folder: RunFolder) -> bool:
    return bool(folder.manifest.get("pgbouncer"))


def _pooler_ages(folder: RunFolder, *, log: ClientLog | None) -> dict[str, Any]:
    server = [s for s in log.sessions if s.client == PGBOUNCER] if log else None
    aged = lifecycle.session_ages(server, log_end=log.ends_at) if log and server is not None else []
    return pooler_lifecycle.pooler_ages(
        server_sessions_oldest_s=aged[0][0] if aged else None, rows=folder.connections,
        max_lifetime=known_pools(folder.manifest).max_lifetime,
        server_lifetime=pooler_lifecycle.server_timers(folder.manifest)[1],
        source="server log" if log else "samples",
    )


def _server_steps(rows: list[dict[str, Any]], log: ClientLog | None) -> lifecycle.Steps:
    """PgBouncer's server connections: the server log's sessions, else the collector's samples."""
    if log is not None:
        return lifecycle.exact_steps(log.sessions, keep=lambda client: client == PGBOUNCER)
    return lifecycle.sampled_steps(rows, keep=lambda client: client == PGBOUNCER)


def _drain(folder: RunFolder, *, log: ClientLog | None) -> dict[str, Any]:
    manifest, rows, app_prefix, origin = folder.manifest, folder.connections, folder.app_prefix, folder.clock_origin
    config, known = manifest["config"], known_pools(manifest)
    load_start = folder.load_start
    pooled = _behind_pgbouncer(folder)
    if pooled:  # the server's connections are PgBouncer's: the pools drain on its client side
        total, per_worker, active, source = pooler_lifecycle.app_side(folder)
        server, (idle_timeout, server_lifetime) = _server_steps(rows, log), pooler_lifecycle.server_timers(manifest)
    else:
        total, per_worker, source = _app_steps(rows, log, app_prefix)
        active = lifecycle.sampled_steps(rows, keep=lambda a: is_app_client(a, app_prefix), states=("active",))
    # A SQLAlchemy engine drains to pool_size at once (its overflow closes on return) and never below.
    engine = config.get("pool_kind") == "sqlalchemy" and config.get("pool_size") is not None
    floor = config["pool_size"] if engine else known.per_worker_min
    max_idle = 0.0 if engine else known.drain_idle
    target = None if floor is None else config["hosts"] * config["workers"] * floor
    bursts = []
    windows = lifecycle.burst_windows(manifest.get("shape", []), load_start=load_start) if load_start is not None else []
    for window in lifecycle.windows_that_ran(windows, load_end=folder.load_end):
        figures = lifecycle.drain_after(
            window, total=total, per_worker=per_worker, active=active, quiet_users=config["baseline_users"],
            target=target, min_size=floor, max_idle=max_idle,
        )
        if pooled:
            figures["server_side"] = pooler_lifecycle.server_side_after(
                window, server=server, quiet_s=figures["quiet_s"], server_idle_timeout=idle_timeout)
        bursts.append({"burst_end_s": None if origin is None else round(window[1] - origin, 3), **figures})
    peak_per_worker = max((b["peak_per_worker"] for b in bursts), default=0)
    if engine:
        production = lifecycle.engine_production_drain(peak_per_worker=peak_per_worker, pool_size=floor)
        drain = {"source": source, "max_idle_s": None, "rule": production["rule"], "bursts": bursts,
                 "production": production}
    else:
        # The sample app's production max_idle is --prod-max-idle; an app of your own's is what its pools declare.
        prod_max_idle = config.get("prod_max_idle", lifecycle.DEFAULT_PROD_MAX_IDLE) if app_prefix else known.drain_idle
        production = lifecycle.production_drain(
            peak_per_worker=peak_per_worker,
            min_size=known.per_worker_min,
            max_size=known.per_worker_max,
            prod_max_idle=prod_max_idle,
        )
        drain = {"source": source, "max_idle_s": known.drain_idle, "rule": "one unused connection closed per max_idle",
                 "bursts": bursts, "production": production}
    if pooled:
        # The pools' rule closes PgBouncer's clients; the server side drains by PgBouncer's own timer.
        production["server_side"] = pooler_lifecycle.production_server_side(idle_timeout, server_lifetime)
        drain.update(behind_pgbouncer=True, server_idle_timeout_s=idle_timeout, server_lifetime_s=server_lifetime)
    return drain


def _app_steps(rows: list[dict[str, Any]], log: ClientLog | None, app_prefix: str) -> tuple[lifecycle.Steps, dict[str, lifecycle.Steps], str]:
    if log is not None:
        names = {s.client for s in log.sessions if is_app_client(s.client, app_prefix)}
        per_worker = {n: lifecycle.exact_steps(log.sessions, keep=lambda a, n=n: a == n) for n in names}
        return lifecycle.exact_steps(log.sessions, keep=lambda a: is_app_client(a, app_prefix)), per_worker, "server log"
    names = {a for row in rows for a in row["by_application"] if is_app_client(a, app_prefix)}
    per_worker = {n: lifecycle.sampled_steps(rows, keep=lambda a, n=n: a == n) for n in names}
    return lifecycle.sampled_steps(rows, keep=lambda a: is_app_client(a, app_prefix)), per_worker, "samples"


def accounting_lines(summary: dict[str, Any]) -> list[str]:
    """What the terminal shows of the three sections, one line each."""
    lines = [_exact_line(summary.get("exact") or {}), _pool_line(summary.get("pool") or {})]
    lifecycle_section = summary.get("lifecycle") or {}
    lines += _lifecycle_lines(lifecycle_section)
    return [line for line in lines if line]


def _exact_line(exact: dict[str, Any]) -> str:
    if not exact.get("available"):
        return f"exact: {exact.get('reason', 'no server log')}" if exact else ""
    refusals = f"; {exact['refusals']} refused" if exact["refusals"] else ""
    return (
        f"exact peak {exact['peak']} connections at {exact['peak_at_s']} s (server log);"
        f" sampled peak {exact['sampled_peak']} every {exact['sample_interval_s']} s:"
        f" sampling missed {exact['sampling_error']}{refusals}"
    )


def _pool_line(pool: dict[str, Any]) -> str:
    if not pool.get("available"):
        return f"pools: {pool['reason']}" if pool.get("reason") else ""
    return (
        f"pools ({pool['workers']} workers): {pool['requests_queued']} of {pool['requests_total']} requests queued,"
        f" {pool['wait_ms_total']} ms waited in all, max {pool['requests_waiting_max']} waiting;"
        + f" {pool['pool_timeouts']} PoolTimeouts, {pool['connections_lost']} connections lost;"
        + (f" overflow max {pool['overflow_max']} per worker, {pool['connections_opened']} connections opened;"
           if pool.get("overflow_max") else "")
        + f" event-loop lag max {pool['event_loop_lag_max_ms']:g} ms"
    )


def _lifecycle_lines(section: dict[str, Any]) -> list[str]:
    lines = []
    ages = section.get("ages", {})
    if ages.get("exceeded"):
        lines.append(
            f"ages: {ages.get('sessions_over_max_lifetime', 'some')} connections outlived max_lifetime"
            f" {ages['max_lifetime_s']:g} s (oldest {ages.get('oldest_session_s', ages['oldest_sampled_s'])} s):"
            " psycopg retires a connection only when it comes back to the pool"
        )
    drain = section.get("drain", {})
    lines += [_burst_line(i, b) + _server_side_clause(b) for i, b in enumerate(drain.get("bursts", []), start=1)]
    production = drain.get("production")
    if production and production.get("kept_per_worker"):
        lines.append(
            f"drain in production (SQLAlchemy engine): the {production['overflow_closed_per_worker']} overflow"
            f" connections per worker close as they are returned; the {production['kept_per_worker']} of pool_size"
            " stay open for good (a QueuePool never shrinks)"
        )
    if production and production["extra_per_worker"] and production.get("not_known"):
        lines.append(f"drain in production: not known, the pools' {production['not_known']} was not declared (--pool)")
    elif production and production["extra_per_worker"]:
        lines.append(
            f"drain in production (max_idle {production['max_idle_s']:g} s): the {production['extra_per_worker']}"
            f" connections per worker above min_size{_CLIENTS if 'server_side' in production else ''}"
            f" take about {production['predicted_drain']} to close,"
            f" one per max_idle (at max_size: {production['worst_case_drain']})"
            + (f"; the server side: {production['server_side']}" if "server_side" in production else "")
        )
    orphans = section.get("orphans", {})
    if orphans.get("workers"):
        pids = ", ".join(str(w["pid"]) for w in orphans["workers"])
        lines.append(f"orphans: up to {orphans['connections_max']} connections held for worker pids no longer alive: {pids}")
    return lines


_CLIENTS = " (PgBouncer's clients)"


def _server_side_clause(burst: dict[str, Any]) -> str:
    """Behind PgBouncer: its server connections over the burst, and what closes them (its timer, not the pools)."""
    side = burst.get("server_side")
    if not side:
        return ""
    return (f"; server side: PgBouncer's {side['peak']} server connections at the burst's peak,"
            f" {side['left_at_quiet_end']} at the quiet phase's end, drain {side['drain']}")


def _burst_line(number: int, burst: dict[str, Any]) -> str:
    if burst.get("server_side"):  # behind PgBouncer the pools' connections are its clients
        return _burst_line(number, {**burst, "server_side": None}).replace(
            f"drain after burst {number}:", f"drain after burst {number}{_CLIENTS}:", 1)
    if burst["predicted_s"] is None:
        rule = "predicted: not known, the pools' min_size or max_idle was not declared"
    else:
        rule = f"predicted {burst['predicted_s']:g} s, at most {burst['predicted_max_s']:g} s"
    if burst["target"] is None:
        return (f"drain after burst {number}: {burst['peak_total']} connections at the burst's peak,"
                f" {burst['left_at_quiet_end']} at the end of the quiet phase (back at min_size: not known, not declared)")
    if not burst["quiet_s"]:
        return f"drain after burst {number}: not measured, the load ended with the burst or within a second of it ({rule})"
    if burst["drained"]:
        tail = f", the first {burst['load_tail_s']:g} s of it still serving the burst" if burst["load_tail_s"] else ""
        return f"drain after burst {number}: back at {burst['target']} connections in {burst['drain_s']:g} s{tail} ({rule})"
    return (
        f"drain after burst {number}: still {burst['left_at_quiet_end']} connections (target {burst['target']})"
        f" after the {burst['quiet_s']:g} s quiet phase ({rule})"
    )
