"""The scenarios' detection rules: each a pure function of a run's summary.json, saying whether its failure was seen and what was measured."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Summary = dict[str, Any]

LAG_LIMIT_MS = 1000.0  # event-loop lag from which a worker was blocked "for seconds"
CLOSE_SLACK_S = 1.0  # how late an idle connection may close before maintenance counts as delayed


@dataclass(frozen=True)
class Finding:
    """What a rule saw in one run: the failure (True), none (False), or not measurable (None).

    `brief` is the key figure, for the table; `seen` says everything measured, for the report.
    """

    present: bool | None
    brief: str
    seen: str


def _errors(summary: Summary, *classes: str) -> int:
    return sum(int(summary.get("errors_by_class", {}).get(name, 0)) for name in classes)


def _failures(summary: Summary) -> str:
    requests = summary["requests"]
    by_class = ", ".join(f"{name} {n}" for name, n in summary.get("errors_by_class", {}).items()) or "none"
    return f"{requests['failures']} of {requests['total']} requests failed ({by_class})"


def connection_lost_under_request(summary: Summary) -> Finding:
    """Requests that failed on a connection closed, or in the wrong state, under them."""
    closed, wrong_state = _errors(summary, "db_connection_closed"), _errors(summary, "db_error")
    ages = summary.get("lifecycle", {}).get("ages", {})
    over = ages.get("sessions_over_max_lifetime")
    outlived = f"; {over} connections outlived max_lifetime {ages['max_lifetime_s']:g} s" if over else ""
    brief = f"db_connection_closed {closed}, db_error {wrong_state}"
    texts = "; ".join(f"{n} x {text}" for text, n in summary.get("error_texts", {}).items())
    said = f"; the app said: {texts}" if texts else ""
    return Finding(closed + wrong_state > 0, brief, f"{_failures(summary)}{outlived}{said}")


def connections_kept_after_bursts(summary: Summary) -> Finding:
    """A burst's connections still open at the end of the quiet phase after it."""
    drain = summary.get("lifecycle", {}).get("drain", {})
    measured = [b for b in drain.get("bursts", []) if b["quiet_s"]]
    if not measured:
        return Finding(None, "not measured", "no quiet phase after a burst: the drain was not measured")
    kept = [b for b in measured if not b["drained"]]
    lines = [_drain_text(b, drain["max_idle_s"]) for b in measured]
    production = drain.get("production") or {}
    if production.get("extra_per_worker"):
        lines.append(
            f"in production (max_idle {production['max_idle_s']:g} s) {production['extra_per_worker']} extra"
            f" connections per worker would take about {production['predicted_drain']} to close"
        )
    last = measured[-1]
    brief = (f"{last['left_at_quiet_end']} of {last['peak_total']} still open after {last['quiet_s']:g} s" if kept
             else f"drained in {last['drain_s']:g} s (rule {last['predicted_s']:g} s)")
    return Finding(bool(kept), brief, "; ".join(lines))


def _drain_text(burst: dict[str, Any], max_idle: float) -> str:
    rule = f"one per max_idle {max_idle:g} s predicts {burst['predicted_s']:g} s"
    if burst["drained"]:
        return f"{burst['peak_total']} connections drained to {burst['target']} in {burst['drain_s']:g} s ({rule})"
    return (f"{burst['peak_total']} connections, still {burst['left_at_quiet_end']} after the {burst['quiet_s']:g} s"
            f" quiet phase ({rule})")


def _lingering_orphans(summary: Summary) -> list[dict[str, Any]]:
    """Dead workers whose connections were still on the server at two checks or more."""
    orphans = summary.get("lifecycle", {}).get("orphans", {})
    return [w for w in orphans.get("workers", []) if w["last_seen_s"] > w["first_seen_s"]]


def connections_outlive_workers(summary: Summary) -> Finding:
    """More connections than workers x max_size, or connections of dead workers that stay."""
    peak, budget = summary["peak_connections"], summary["budget"]["pools_total"]
    orphans = _lingering_orphans(summary)
    names = len(summary["connections"]["workers_seen"])
    seen = (f"peak {peak} connections against workers x max_size = {budget};"
            f" {names} processes (workers, recycled workers, or not a worker) held connections;"
            f" {len(orphans)} dead workers' connections lingered")
    brief = f"peak {peak} / budget {budget}, {len(orphans)} orphaned workers"
    return Finding(peak > budget or bool(orphans), brief, seen)


def pool_timeouts(summary: Summary) -> Finding:
    timeouts = _errors(summary, "pool_timeout")
    pool = summary.get("pool", {})
    waiting = f"; up to {pool['requests_waiting_max']} requests waited in one pool" if pool.get("available") else ""
    return Finding(timeouts > 0, f"pool_timeout {timeouts}", f"{_failures(summary)}{waiting}")


def pool_stuck_in_another_loop(summary: Summary) -> Finding:
    """loop-mismatch's own signature: requests waiting on a pool that never grows, none of its connections
    available, while the server shows the pool's connections idle. A PoolTimeout alone says none of this."""
    pool = summary.get("pool", {})
    if not pool.get("available"):
        return Finding(None, "not measured", "no pool telemetry: pool_size and pool_available were not scraped")
    size, available = pool.get("pool_size_max"), pool.get("available_while_waiting_max")
    if size is None or available is None:
        return Finding(None, "not measured", "the summary predates pool_size_max and available_while_waiting_max")
    max_size, waiting = summary["budget"]["max_size"], pool["requests_waiting_max"]
    idle = summary["connections"].get("oldest_idle_s", 0.0)
    # Requests waited, yet the pool never grew to max_size and never had a connection for them.
    stuck = size < max_size and available == 0 and waiting > 0
    seen = (f"pool_size at most {size} per worker (max_size {max_size}) while requests waited,"
            f" pool_available {available} whenever requests waited (up to {waiting}); the server saw app"
            f" connections idle for up to {idle:g} s; {_failures(summary)}")
    brief = f"pool_size max {size}, available 0 with {waiting} waiting" if stuck else f"pool_size max {size}"
    return Finding(stuck and idle > 0, brief, seen)


def silent_drop_failures(summary: Summary) -> Finding:
    """Requests that met a silently cut connection: they hung, then failed as closed."""
    proxy = summary.get("proxy")
    if not proxy:
        return Finding(None, "not measured", "the run had no cloud-proxy emulator")
    closed = _errors(summary, "db_connection_closed")
    hung = (f"{proxy['hung_requests']} requests or checks hung into a cut, up to {proxy['hang_max_s']} s"
            if proxy["hung_requests"] else "nothing hung")
    seen = (f"{sum(proxy['cuts'].values())} connections cut silently after {proxy['idle_cut_s']:g} s idle"
            f" ({proxy['cut_idle']} idle in a pool); {hung}; {_failures(summary)}")
    return Finding(closed > 0, f"db_connection_closed {closed}, hung up to {proxy['hang_max_s'] or 0} s", seen)


def orphaned_backends(summary: Summary) -> Finding:
    """Server backends of connections whose client is gone, still there when the run ended."""
    proxy = summary.get("proxy")
    if not proxy:
        return Finding(None, "not measured", "the run had no cloud-proxy emulator")
    left, after = proxy["backends_left_open"], proxy["backend_after_cut_max_s"]
    seen = (f"{sum(proxy['cuts'].values())} connections lost their client (cut silently); {left} of their backends"
            f" were still on the server at the end; the longest stayed {after} s after its client was gone;"
            f" peak {summary['peak_connections']} connections against the pools' {summary['budget']['pools_total']}")
    return Finding(left > 0, f"{left} orphaned backends, kept up to {after} s", seen)


def connection_closed_by_server(summary: Summary) -> Finding:
    closed = _errors(summary, "db_connection_closed")
    return Finding(closed > 0, f"db_connection_closed {closed}", _failures(summary))


def event_loop_blocked(summary: Summary) -> Finding:
    """Event-loop lag of seconds, or idle connections closed late (asyncpg closes each after max_idle)."""
    pool = summary.get("pool", {})
    max_idle = summary.get("lifecycle", {}).get("drain", {}).get("max_idle_s")
    if not pool.get("available") or max_idle is None:
        return Finding(None, "not measured", "no pool telemetry or lifecycle figures: the lag was not measured")
    lag_s = pool["event_loop_lag_max_ms"] / 1000
    oldest_idle = summary["connections"].get("oldest_idle_s", 0.0)
    late = oldest_idle > max_idle + CLOSE_SLACK_S
    seen = (f"event-loop lag up to {lag_s:.3f} s; the oldest idle connection was {oldest_idle:g} s old against"
            f" max_idle {max_idle:g} s ({'closed late' if late else 'closed on time'})")
    brief = f"lag {lag_s:.2f} s, idle {oldest_idle:.1f} s / max_idle {max_idle:g} s"
    return Finding(lag_s * 1000 >= LAG_LIMIT_MS or late, brief, seen)


def server_refused_connections(summary: Summary) -> Finding:
    """Connection attempts the server refused, requests failed for it, or a peak at the usable limit."""
    failed = _errors(summary, "db_too_many_connections")
    exact = summary.get("exact", {})
    refusals = exact.get("refusals", 0) if exact.get("available") else 0
    harness = summary["budget"]["extra_clients"]  # the collector: scenarios declare no other clients
    peak, usable = summary["peak_connections"], summary["server"]["usable"]
    seen = (f"{_failures(summary)}; {refusals} connection attempts refused by the server (its log);"
            f" peak {peak} + {harness} harness connections against {usable} usable; verdict {summary['verdict']}")
    brief = f"refused {refusals}, db_too_many_connections {failed}, peak {peak}+{harness} / usable {usable}"
    return Finding(failed > 0 or refusals > 0 or peak + harness >= usable, brief, seen)


CHURN_FACTOR = 2  # connections opened above this many times what the pools hold: opened and closed, not kept


def connections_churned(summary: Summary) -> Finding:
    """More connections opened (the server's log) than the pools hold, many times over: opened per burst, closed on return."""
    exact = summary.get("exact", {})
    if not exact.get("available"):
        return Finding(None, "not measured", "no server log: the connections opened were not counted")
    opened, held = int(exact.get("sessions", 0)), summary["budget"]["pools_total"]
    requests = summary["requests"]
    load_s = requests["total"] / requests["rps"] if requests["rps"] else 0.0
    rate = f"{opened / load_s:.1f} connects/s" if load_s else "rate unknown"
    seen = (f"{opened} connections opened in {load_s:.0f} s of load ({rate}; the server's log)"
            f" for {requests['total']} requests; the engines hold at most {held}")
    return Finding(opened > CHURN_FACTOR * held, f"{opened} opened / {held} held, {rate}", seen)


def overcommit_without_pooler(summary: Summary) -> Finding:
    """The server's limit reached by the app's pools; behind PgBouncer, its server pools within it."""
    found = server_refused_connections(summary)
    pooler = summary.get("pgbouncer")
    if not pooler:
        return found
    behind = (f"; behind PgBouncer ({pooler['pool_mode']}): {pooler['peak_clients']} client connections,"
              f" {pooler['peak_server_connections']} server connections (its pools {pooler['budget']['server_pools']})")
    return Finding(found.present, found.brief, found.seen + behind)


def prepared_statement_lost(summary: Summary) -> Finding:
    missing = _errors(summary, "db_prepared_statement_lost")
    return Finding(missing > 0, f"db_prepared_statement_lost {missing}", _failures(summary))
