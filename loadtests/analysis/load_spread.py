"""How evenly the load reached the workers, and whether their pools were full at the same moment.

The budget assumes every worker may fill its pool at once. gunicorn hands a
new HTTP connection to whichever worker accepts it first, and a keep-alive
client then sticks to that worker: some pools fill while others idle. The
share of requests each worker served (its pool's own counter) says how even
the load was; the most workers at their full pools in one sample says how
close the run came to the worst case the budget counts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any


def load_spread(
    summary: dict[str, Any], rows: list[dict[str, Any]], *, app_prefix: str, max_size: int,
    pool_rows: list[dict[str, Any]] = (),
) -> dict[str, Any]:
    """summary.json's `load_spread`: each worker's share of the requests, and how many pools were full together."""
    budget = summary["budget"]
    workers = budget["hosts"] * budget["workers"]
    # Behind PgBouncer the server's connections are PgBouncer's, each named after the last client it
    # served: counting them per worker would say 0 pools full. Only the pools' own count holds.
    pooled = bool(summary.get("pgbouncer"))
    full = budget.get("per_worker", max_size)
    served = _requests_by_worker(summary)
    total = sum(served.values())
    shares = {pid: round(n / total, 4) for pid, n in served.items()} if total else {}
    # A worker that served nothing is not in the pool's counters: count it as a share of 0.
    low = min(shares.values(), default=None) if len(shares) >= workers else 0.0 if shares else None
    high = max(shares.values(), default=None)
    return {
        "workers": workers,
        "requests_by_worker": served,
        "share_min": low,
        "share_max": high,
        # 1.0: every worker served the same number of requests; 0: one of them served none.
        "evenness": round(low / high, 3) if low is not None and high else None,
        "full_pool": full,
        "workers_full_together_max": None if pooled else _full_together(rows, app_prefix=app_prefix, full=full),
        **({"workers_full_together_note": NOT_ON_THE_SERVER} if pooled else {}),
        # The same from the pools' own counters (pool_stats.csv): pool_size == pool_max in one scrape.
        # With several hosts, a host's scrape holds its own workers only.
        **_pools_full_together(pool_rows, workers=budget["workers"]),
    }


NOT_ON_THE_SERVER = ("not measured behind PgBouncer: the server's connections are PgBouncer's server connections,"
                     " never a worker's; the pools' own count (pools_full_together_max) says how many were full")


def _requests_by_worker(summary: dict[str, Any]) -> dict[str, int]:
    pool = summary.get("pool") or {}
    if not pool.get("available"):
        return {}
    return {pid: int(figures.get("requests_total", 0)) for pid, figures in sorted(pool.get("per_worker", {}).items())}


def _full_together(rows: list[dict[str, Any]], *, app_prefix: str, full: int) -> int:
    """The most workers holding `full` connections (or more) in one pg_stat_activity sample."""
    most = 0
    for row in rows:
        at_full = sum(
            1 for app, states in row["by_application"].items()
            if app.startswith(app_prefix) and sum(states.values()) >= full
        )
        most = max(most, at_full)
    return most


def _pools_full_together(pool_rows: Iterable[dict[str, Any]], *, workers: int) -> dict[str, int | None]:
    """The most pools at their max_size in one scrape, and how many scrapes found all of a host's `workers` so.

    None when the run scraped no pool counters (an own app without /metrics).
    """
    full_by_scrape: dict[tuple[Any, Any], int] = defaultdict(int)
    for row in pool_rows:
        full = row["pool_max"] > 0 and row["pool_size"] >= row["pool_max"]
        full_by_scrape[(row["host"], row["timestamp"])] += full
    if not full_by_scrape:
        return {"pools_full_together_max": None, "scrapes_all_pools_full": None}
    # Hosts are scraped one after another: "at once" is one host's scrape (one timestamp).
    return {
        "pools_full_together_max": max(full_by_scrape.values()),
        "scrapes_all_pools_full": sum(1 for n in full_by_scrape.values() if n >= workers),
    }


def spread_line(spread: dict[str, Any] | None) -> str | None:
    """The terminal's line about the load's spread; None when the run scraped no pool counters."""
    if not spread or spread.get("evenness") is None:
        return None
    parts = [
        f"load spread over {spread['workers']} workers: {spread['share_min'] * 100:.0f} % to"
        f" {spread['share_max'] * 100:.0f} % of the requests each (evenness {spread['evenness']:.2f})",
        _server_clause(spread),
        _pools_clause(spread),
    ]
    return "; ".join(part for part in parts if part)


def _server_clause(spread: dict[str, Any]) -> str:
    if spread.get("workers_full_together_max") is None:  # behind PgBouncer: the server names no worker
        return ""
    return (f"at most {spread['workers_full_together_max']} of {spread['workers']} pools full"
            f" ({spread['full_pool']} connections) at the same moment")


def _pools_clause(spread: dict[str, Any]) -> str:
    most = spread.get("pools_full_together_max")
    if most is None:
        return ""
    if spread.get("workers_full_together_max") is None:
        return (f"as the pools counted, {most} of {spread['workers']} at max_size ({spread['full_pool']} connections)"
                " in one scrape (PgBouncer's clients; the server's connections are PgBouncer's, not counted per worker)")
    return f"as the pools counted, {most} of {spread['workers']} at max_size in one scrape"
