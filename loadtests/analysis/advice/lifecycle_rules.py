"""Rules on connections over time: the drain after a burst, ages past max_lifetime, a blocked event loop."""

from __future__ import annotations

import math
from typing import Any

from loadtests.analysis.advice.findings import INFO, WARNING, Finding, Known, finding, not_known
from loadtests.analysis.lifecycle import human_duration

LAG_WARNING_MS = 200.0  # how late a 250 ms timer may fire before a blocking call is the likely cause


def drain(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """A burst's connections outlast the quiet phase: the max_idle that drains within it, and its reconnects."""
    section = (summary.get("lifecycle") or {}).get("drain") or {}
    bursts = section.get("bursts") or []
    if not bursts:
        return []
    quiet = float(known.config["quiet_seconds"])  # the load shape is the harness's own: always known
    missing = known.missing("min_size", "max_idle", "workers", "hosts")
    if missing:
        return [finding("drain", INFO, figure={"quiet_s": quiet}, setting="max_idle", suggested=None,
                        why="The drain follows min_size and max_idle: one unused connection closed per max_idle.",
                        text=f"drain: {not_known(missing)}")]
    kept = [b for b in bursts if b["quiet_s"] and not b["drained"]]
    production = section.get("production") or {}
    extra = int(production.get("extra_per_worker") or 0)
    predicted = float(production.get("predicted_drain_s") or 0.0)
    if not kept and not (extra and predicted > quiet):
        return []
    extra = extra or max(int(b["peak_per_worker"]) - int(known.get("min_size")) for b in kept)
    if extra <= 0:
        return []  # nothing above what the pools keep (fixed pools never drain): nothing to close
    # psycopg closes one unused connection per max_idle, and the first tick may still see the pool busy.
    suggested = math.floor(quiet / (extra + 1) * 10) / 10
    reconnects = extra * int(known.get("workers")) * int(known.get("hosts"))
    cost = _reconnect_cost(summary, reconnects=reconnects, bursts_per_hour=3600 / (quiet + float(known.config["burst_seconds"])))
    measured = (f"in the run {kept[-1]['left_at_quiet_end']} of {kept[-1]['peak_total']} connections were still open"
                f" after the {kept[-1]['quiet_s']:g} s quiet phase (max_idle {section['max_idle_s']:g} s); " if kept else "")
    figure = {
        "quiet_s": quiet,
        "extra_per_worker": extra,
        "max_idle_s": section.get("max_idle_s"),
        "production_max_idle_s": production.get("max_idle_s"),
        "production_drain_s": predicted,
        "bursts_not_drained": len(kept),
        "reconnects_per_burst": reconnects,
    }
    change = (f"max_idle {suggested:g} s drains within it, at the cost of {cost}" if suggested > 0
              else f"no max_idle drains {extra} connections within {quiet:g} s: raise min_size toward the burst's need instead")
    if section.get("behind_pgbouncer"):
        return [_pooled_drain(summary, figure=figure, measured=measured, extra=extra, predicted=predicted,
                              production=production)]
    return [finding(
        "drain", INFO, figure=figure, setting="max_idle", suggested=suggested if suggested > 0 else None,
        why=f"{measured}a pool closes one unused connection per max_idle, so {extra} extra connections per worker take"
        f" {human_duration(predicted)} at max_idle {production.get('max_idle_s', 0):g} s."
        " The budget counts them anyway: lower max_idle only when the server's slots or memory are needed"
        " between bursts; keeping them lets the next burst start without connecting.",
        text=f"drain: {extra} connections per worker above min_size stay {human_duration(predicted)}"
        f" (max_idle {production.get('max_idle_s', 0):g} s), longer than the {quiet:g} s quiet phase -> {change}",
    )]


def _pooled_drain(summary: dict[str, Any], *, figure: dict[str, Any], measured: str, extra: int, predicted: float,
                  production: dict[str, Any]) -> Finding:
    """Behind PgBouncer the connections the pools keep are its clients: they cost client slots, no server connection."""
    budget = (summary.get("pgbouncer") or {}).get("budget") or {}
    slots = (f"PgBouncer's clients {budget['client_total']} of max_client_conn {budget['max_client_conn']}"
             f" {'fit' if budget.get('clients_fit') else 'do NOT fit'}" if budget else "PgBouncer's client slots")
    return finding(
        "drain", INFO, figure=figure, setting=None, suggested=None,
        why=f"{measured}behind PgBouncer the pools' connections are its clients: the {extra} kept per worker hold"
        " client slots (max_client_conn bounds them, counted at max_size already), not server connections. The"
        f" server side is PgBouncer's server pools: {production.get('server_side', 'its server_idle_timeout closes them')}.",
        text=f"drain: {extra} connections per worker above min_size stay {human_duration(predicted)}"
        f" (max_idle {production.get('max_idle_s', 0):g} s) as PgBouncer's clients -> nothing to change for the server;"
        f" {slots}; lower max_idle only if max_client_conn runs short",
    )


def _reconnect_cost(summary: dict[str, Any], *, reconnects: int, bursts_per_hour: float) -> str:
    pool = summary.get("pool") or {}
    opened = int(pool.get("connections_opened") or 0)
    connect = (f", {pool['connect_ms_total'] / opened:.0f} ms each as measured"
               if opened and pool.get("connect_ms_total") is not None else "")
    return f"{reconnects} new connections per burst{connect} ({reconnects * bursts_per_hour:.0f} an hour at this load shape)"


def lifetime(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """Connections older than max_lifetime: psycopg retires one only when it comes back to the pool."""
    ages = (summary.get("lifecycle") or {}).get("ages") or {}
    if not ages.get("exceeded"):
        return []
    if known.missing("max_lifetime"):
        return [finding("lifetime", INFO, figure={}, setting="max_lifetime", suggested=None,
                        why="Ages are held against max_lifetime.", text=f"ages: {not_known(['max_lifetime'])}")]
    max_lifetime = float(ages["max_lifetime_s"])
    oldest = float(ages.get("oldest_session_s", ages.get("oldest_sampled_s", 0.0)))
    over = ages.get("sessions_over_max_lifetime")
    max_idle = known.get("max_idle")
    figure = {"max_lifetime_s": max_lifetime, "oldest_s": oldest, "sessions_over": over, "source": ages.get("source")}
    above_min = (known.get("max_size") or 0) > (known.get("min_size") or 0)  # max_idle closes only those
    if max_idle is not None and float(max_idle) >= max_lifetime and above_min:
        setting, suggested = "max_idle", round(max_lifetime / 2, 1)
        change = f"max_idle {suggested:g} s (below max_lifetime) closes idle connections above min_size before they expire"
    else:
        setting, suggested = None, None
        change = "call pool.check() periodically (it discards expired connections) if max_lifetime guards a cut-off"
    return [finding(
        "lifetime", WARNING, figure=figure, setting=setting, suggested=suggested,
        why="psycopg discards an expired connection when it comes back to the pool (or on pool.check()), so one that"
        " stays idle, or is held by a long request, lives past max_lifetime; when max_lifetime is there to stay under"
        " a server's or a proxy's cut-off, keep it at most half of that cut-off.",
        text=f"ages: {over if over is not None else 'some'} connections outlived max_lifetime {max_lifetime:g} s"
        f" (oldest {oldest:g} s) -> {change}",
    )]


def loop_lag(summary: dict[str, Any], known: Known, *, target: float) -> list[Finding]:
    """A late event-loop timer: something blocked the loop, and every request of that worker waited for it."""
    pool = summary.get("pool") or {}
    if not pool.get("available"):
        return []
    lag = float(pool.get("event_loop_lag_max_ms") or 0.0)
    if lag < LAG_WARNING_MS:
        return []
    workers = pool.get("per_worker") or {}
    worst = max(sorted(workers), key=lambda pid: workers[pid]["event_loop_lag_max_ms"], default=None)
    return [finding(
        "loop_lag", WARNING, figure={"event_loop_lag_max_ms": lag, "worker": worst, "limit_ms": LAG_WARNING_MS},
        setting=None, suggested=None,
        why="A 250 ms timer fired that late: a blocking call in async code (a sync driver, time.sleep, CPU-heavy"
        " work) held the loop, and every request of the worker and the pool's own timers waited; a machine short"
        " of CPU shows the same.",
        text=f"event loop: up to {lag:g} ms late in worker {worst} -> await the blocking call or move it to a"
        " thread (run_in_executor); not a pool setting",
    )]
