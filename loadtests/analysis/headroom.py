"""Headroom: the usable connections left free when every pool is full, against a target share.

The budget is counted as deployed: the pools and the declared other clients,
without the harness's own collector (as the sweep's recommendation counts it).
Below the target is a warning; it changes the verdict only when asked to.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadtests.budget import Budget, ServerLimits, allowed, largest_pooler_pool_size

DEFAULT_TARGET = 0.20  # the share of usable connections to keep free, as the sweep's --headroom default


@dataclass(frozen=True)
class Headroom:
    """Free usable connections with every pool full, and the largest sizes that keep `target` free."""

    deployed: int  # connections the pools and the other clients may hold
    usable: int
    free: int
    share: float  # free / usable
    target: float
    allowed: int  # usable less the target's share, rounded down
    largest_max_size: int  # per pool, for the budget's hosts, workers and pools (0: none keeps the target)
    largest_per_worker: int  # all of a worker's pools together
    largest_workers: int  # per host, with the budget's pools
    # Behind PgBouncer only its server pools reach the server: `deployed` counts those, and this is the
    # largest default_pool_size that keeps the target (None for a run without PgBouncer).
    pgbouncer_pool_size: int | None = None

    @property
    def below_target(self) -> bool:
        return self.deployed > self.allowed

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "share": round(self.share, 4), "below_target": self.below_target}


def deployed_budget(budget: dict[str, Any], *, other_clients: int) -> Budget:
    """summary.json's budget as deployed: its pools and the other clients, without the harness's collector."""
    return Budget(
        hosts=budget["hosts"],
        workers=budget["workers"],
        max_size=budget["max_size"],
        pools_per_worker=budget.get("pools_per_worker", 1),
        pool_sizes=tuple(budget.get("pool_sizes") or ()),
        extra_clients=other_clients,
    )


def server_limits(server: dict[str, Any]) -> ServerLimits:
    return ServerLimits(
        max_connections=server["max_connections"],
        superuser_reserved_connections=server["superuser_reserved_connections"],
        reserved_connections=server.get("reserved_connections", 0),
    )


def headroom_of(summary: dict[str, Any], *, other_clients: int, target: float = DEFAULT_TARGET) -> Headroom:
    """The headroom of a run's budget (summary.json) against the server it ran on."""
    budget = deployed_budget(summary["budget"], other_clients=other_clients)
    limits = server_limits(summary["server"])
    keep = allowed(limits, headroom_ratio=target)
    pooler = (summary.get("pgbouncer") or {}).get("budget")
    if pooler:
        return _server_side(pooler, limits, other_clients=other_clients, target=target)
    room = max(keep - budget.extra_clients, 0)
    pools = budget.hosts * budget.workers * budget.pools_per_worker
    return Headroom(
        deployed=budget.total,
        usable=limits.usable,
        free=limits.usable - budget.total,
        share=(limits.usable - budget.total) / limits.usable if limits.usable > 0 else 0.0,
        target=target,
        allowed=keep,
        largest_max_size=room // pools,
        largest_per_worker=room // (budget.hosts * budget.workers),
        largest_workers=room // (budget.hosts * budget.per_worker),
    )


def _server_side(pooler: dict[str, Any], limits: ServerLimits, *, other_clients: int, target: float) -> Headroom:
    """Behind PgBouncer: its server pools and the other clients against the usable connections."""
    deployed = int(pooler["server_pools"]) + other_clients
    return Headroom(
        deployed=deployed, usable=limits.usable, free=limits.usable - deployed,
        share=(limits.usable - deployed) / limits.usable if limits.usable > 0 else 0.0, target=target,
        allowed=allowed(limits, headroom_ratio=target), largest_max_size=0, largest_per_worker=0, largest_workers=0,
        pgbouncer_pool_size=largest_pooler_pool_size(
            limits, reserve_pool_size=int(pooler["reserve_pool_size"]), pairs=int(pooler.get("pairs", 1)),
            extra_clients=other_clients, headroom_ratio=target),
    )


def headroom_warning(headroom: Headroom) -> str | None:
    """One line when the headroom is below its target, naming the sizes that keep it; None otherwise."""
    if not headroom.below_target:
        return None
    if headroom.pgbouncer_pool_size is not None:
        keeps = (f"PgBouncer default_pool_size {headroom.pgbouncer_pool_size} keeps it" if headroom.pgbouncer_pool_size
                 else "no PgBouncer pool size keeps it")
        return (
            f"headroom {headroom.free} of {headroom.usable} usable connections ({headroom.share * 100:.1f} %) is below"
            f" the {headroom.target * 100:g} % target: PgBouncer's server pools hold {headroom.deployed} connections"
            f" when full, at most {headroom.allowed} keep it; {keeps}"
        )
    keeps = (
        f"max_size {headroom.largest_max_size} or {headroom.largest_workers} workers per host keep it"
        if headroom.largest_max_size and headroom.largest_workers
        else "no max_size keeps it with these hosts and workers"
    )
    return (
        f"headroom {headroom.free} of {headroom.usable} usable connections ({headroom.share * 100:.1f} %) is below"
        f" the {headroom.target * 100:g} % target: {headroom.deployed} connections with every pool full,"
        f" at most {headroom.allowed} keep it; {keeps}"
    )


def verdict_with_headroom(
    verdict: str, reasons: list[str], *, headroom: Headroom, enforce: bool = False
) -> tuple[str, list[str], list[str]]:
    """(verdict, reasons, warnings): headroom below target is a warning, or fails a passing run when `enforce`."""
    line = headroom_warning(headroom)
    if line is None:
        return verdict, reasons, []
    if enforce and verdict == "pass":
        return "fail", [line], []
    if enforce:
        return verdict, [*reasons, line], []
    return verdict, reasons, [line]
