"""The pool size a run's load asked for, and the largest the server takes while keeping its headroom.

psycopg_pool's own counters say how many requests waited; a worker's pool
size plus the requests waiting in it (at the busiest scrape, once a second,
so a lower bound of the peak) is how many connections it wanted at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.analysis.advice.findings import Known, not_known
from loadtests.analysis.headroom import Headroom, headroom_of

POOLER = "a pooler such as PgBouncer (transaction mode) in front of the server, or a larger max_connections"


@dataclass(frozen=True)
class Demand:
    """Connections the pools wanted at once: the busiest worker's, and all workers' together."""

    busiest_worker: str
    per_worker: int
    total: int

    def as_dict(self) -> dict[str, Any]:
        return {"busiest_worker": self.busiest_worker, "wanted_per_worker": self.per_worker, "wanted_total": self.total}


@dataclass(frozen=True)
class SizeAdvice:
    setting: str | None
    suggested: Any
    change: str  # what to do, for the terminal line
    why: str


def pool_demand(pool: dict[str, Any]) -> Demand | None:
    per_worker = pool.get("per_worker") or {}
    if not pool.get("available") or not per_worker:
        return None
    wanted = {pid: int(w["pool_size_max"]) + int(w["requests_waiting_max"]) for pid, w in per_worker.items()}
    busiest = max(sorted(wanted), key=lambda pid: wanted[pid])
    return Demand(busiest_worker=busiest, per_worker=wanted[busiest], total=sum(wanted.values()))


def stuck_pool(summary: dict[str, Any], known: Known) -> SizeAdvice | None:
    """Requests waited on pools that never grew and never had a connection for them: no size helps.

    A psycopg pool below max_size opens a connection when a request waits; one
    that queued, opened nothing beyond its first min_size connections with none
    refused, and showed no connection available while requests waited, has no
    background workers running: loop-mismatch's signature (an AsyncConnectionPool
    opened in another event loop, say asyncio.run at import).
    """
    pool = summary.get("pool") or {}
    max_size, min_size = known.get("max_size"), known.get("min_size")
    if not pool.get("available") or max_size is None or min_size is None or int(max_size) <= int(min_size):
        return None
    queued = [w for w in (pool.get("per_worker") or {}).values() if w["requests_queued"]]
    if not queued or pool.get("available_while_waiting_max") != 0 or int(pool.get("connections_errors") or 0):
        return None
    if any(int(w["pool_size_max"]) >= int(max_size) or int(w.get("connections_opened", min_size + 1)) > int(min_size)
           for w in queued):
        return None
    size = max(int(w["pool_size_max"]) for w in queued)
    return SizeAdvice(
        None, None,
        f"the pools never grew (pool_size at most {size} of max_size {max_size} while requests waited; no pool opened"
        f" a connection beyond its first min_size {min_size}, none was refused): an AsyncConnectionPool opened in another event loop (asyncio.run at"
        " import) never serves the worker's loop -> open it in the FastAPI lifespan with await pool.open(wait=True)"
        " and close it at shutdown; no larger pool helps",
        "A pool below max_size opens a connection when a request waits: these opened none and had none available"
        " while requests waited, so their background workers were not running in the worker's event loop.",
    )


def size_for(summary: dict[str, Any], known: Known, *, demand: Demand | None, target: float) -> SizeAdvice:
    """The max_size (or workers) that serves `demand` within the budget and the headroom target."""
    if summary["budget"].get("pool_sizes"):
        return SizeAdvice("pool_sizes", None, "which of your pools queued is not known (the counters are per worker)",
                          "The pools' counters are per worker, not per pool.")
    missing = known.missing("hosts", "workers", "max_size")
    if missing:
        return SizeAdvice("max_size", None, not_known(missing), "The budget arithmetic needs hosts, workers and max_size.")
    if (summary.get("pgbouncer") or {}).get("budget"):
        return _pooler_size_for(summary, known, demand=demand, target=target)
    shape = _Shape(
        hosts=int(known.get("hosts")),
        workers=int(known.get("workers")),
        pools=int(summary["budget"].get("pools_per_worker", 1)),
        other=int(known.config.get("other_clients") or 0),
        room=headroom_of(summary, other_clients=int(known.config.get("other_clients") or 0), target=target),
    )
    current = int(known.get("max_size"))
    need = max(demand.per_worker, current + 1) if demand else current + 1
    largest = shape.room.largest_max_size
    if need <= largest:
        return SizeAdvice("max_size", need, f"raise max_size {current} -> {need} ({shape.keeps(need)})",
                          f"{_served(demand, need)} {shape.keeps(need).capitalize()}.")
    fewer = shape.fewer_workers(demand) if demand else None
    if largest > current:
        alternative = f"; or {fewer}" if fewer else f"; beyond that, {POOLER}"
        return SizeAdvice(
            "max_size", largest,
            f"raise max_size {current} -> {largest}, the most that keeps the headroom ({shape.keeps(largest)}){alternative}",
            f"The busiest pool wanted {need} connections at once, more than the {largest} that keep"
            f" {target * 100:g} % of the usable connections free, so some requests will still wait.",
        )
    if fewer:
        return SizeAdvice("workers", fewer, f"run {fewer}", "A larger max_size would eat into the headroom;"
                          " fewer, larger pools serve the same waiting requests with the same connections.")
    return SizeAdvice(
        "max_size", None, f"no larger max_size keeps {target * 100:g} % headroom: {POOLER}",
        f"Every pool at max_size {current + 1} would hold more connections than keep the headroom target.",
    )


def largest_fitting(summary: dict[str, Any], known: Known, *, target: float) -> SizeAdvice:
    """The largest max_size that keeps the headroom target: the fix when the server refused or was full."""
    why = "Connections above the usable limit are refused; undeclared other clients count too (--other-clients)."
    if (summary.get("pgbouncer") or {}).get("budget"):
        return _pooler_fitting(summary, known, target=target, why=why)
    if summary["budget"].get("pool_sizes"):
        return SizeAdvice("pool_sizes", None, "fewer connections per worker in all; declare every other client", why)
    missing = known.missing("hosts", "workers", "max_size")
    if missing:
        return SizeAdvice("max_size", None, not_known(missing), why)
    room = headroom_of(summary, other_clients=int(known.config.get("other_clients") or 0), target=target)
    if not room.largest_max_size:
        return SizeAdvice("workers", room.largest_workers or None,
                          f"fewer workers or hosts: no max_size keeps {target * 100:g} % headroom", why)
    return SizeAdvice("max_size", room.largest_max_size,
                      f"max_size {room.largest_max_size}, the largest that keeps {target * 100:g} % headroom;"
                      " declare every other client with --other-clients", why)


def _pooler_size_for(summary: dict[str, Any], known: Known, *, demand: Demand | None, target: float) -> SizeAdvice:
    """Behind PgBouncer the app's pools are bounded by max_client_conn; the server side by default_pool_size."""
    pooler = summary["pgbouncer"]["budget"]
    budget = summary["budget"]
    pools = int(known.get("hosts")) * int(known.get("workers")) * int(budget.get("pools_per_worker", 1))
    admin = int(pooler["client_total"]) - int(budget["pools_total"])
    largest = (int(pooler["max_client_conn"]) - admin) // pools
    current = int(known.get("max_size"))
    need = min(max(demand.per_worker, current + 1) if demand else current + 1, largest)
    room = headroom_of(summary, other_clients=int(known.config.get("other_clients") or 0), target=target)
    server = (f"PgBouncer's default_pool_size {pooler['default_pool_size']} bounds the server connections that serve"
              f" them (up to {room.pgbouncer_pool_size} keeps {target * 100:g} % headroom)")
    if need <= current:
        return SizeAdvice("pgbouncer_pool_size", room.pgbouncer_pool_size or None,
                          f"max_client_conn {pooler['max_client_conn']} takes no larger max_size; {server}",
                          "Behind PgBouncer the app's pools are its clients: max_client_conn bounds them.")
    return SizeAdvice("max_size", need, f"raise max_size {current} -> {need} (PgBouncer clients {need * pools + admin}"
                      f" of max_client_conn {pooler['max_client_conn']}); {server}",
                      "Behind PgBouncer the app's pools are its clients, not the server's: max_client_conn bounds them,"
                      " and requests beyond PgBouncer's server pools wait in its queue (cl_waiting) instead.")


def _pooler_fitting(summary: dict[str, Any], known: Known, *, target: float, why: str) -> SizeAdvice:
    """Behind PgBouncer the server sees only its server pools: their size is the fix, not the app's max_size."""
    room = headroom_of(summary, other_clients=int(known.config.get("other_clients") or 0), target=target)
    why = "Behind PgBouncer only its server pools reach the server. " + why
    if not room.pgbouncer_pool_size:
        return SizeAdvice("pgbouncer_pool_size", None, f"no PgBouncer pool size keeps {target * 100:g} % headroom:"
                          " a smaller reserve_pool_size, fewer other clients or a larger max_connections", why)
    return SizeAdvice("pgbouncer_pool_size", room.pgbouncer_pool_size,
                      f"PgBouncer default_pool_size {room.pgbouncer_pool_size}, the largest that keeps"
                      f" {target * 100:g} % headroom; declare every other client with --other-clients", why)


@dataclass(frozen=True)
class _Shape:
    hosts: int
    workers: int
    pools: int  # per worker
    other: int  # other clients' connections
    room: Headroom

    def total(self, size: int, *, workers: int | None = None) -> int:
        return self.hosts * (workers or self.workers) * self.pools * size + self.other

    def keeps(self, size: int) -> str:
        other = f" + {self.other} other" if self.other else ""
        pools = f" x {self.pools} pools" if self.pools != 1 else ""
        return (f"{self.hosts} hosts x {self.workers} workers{pools} x {size}{other} = {self.total(size)}"
                f" <= {self.room.allowed} of {self.room.usable} usable, {self.room.target * 100:g} % left free")

    def fewer_workers(self, demand: Demand) -> str | None:
        """Fewer workers with larger pools, when they hold every connection the workers wanted in all."""
        for fewer in range(self.workers - 1, 0, -1):
            size = (self.room.allowed - self.other) // (self.hosts * fewer * self.pools)
            if fewer * size >= demand.total:
                return f"{fewer} workers x max_size {size} ({self.total(size, workers=fewer)} connections)"
        return None


def _served(demand: Demand | None, size: int) -> str:
    if demand is None:
        return f"max_size {size} gives each pool one more connection."
    return (f"The busiest pool wanted {demand.per_worker} connections at once (its size plus the requests"
            f" waiting in it); max_size {size} serves them without queueing.")
