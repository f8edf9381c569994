"""Connection budget arithmetic: does `hosts x workers x pools x max_size` fit the server?"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Budget:
    """Connections the deployment may open at most, its own pools plus other clients."""

    hosts: int
    workers: int
    max_size: int
    pools_per_worker: int = 1
    extra_clients: int = 0
    # An app of your own may size its pools differently (say 4, 4 and 10): their sum counts.
    pool_sizes: tuple[int, ...] = ()

    @property
    def per_worker(self) -> int:
        return sum(self.pool_sizes) if self.pool_sizes else self.pools_per_worker * self.max_size

    @property
    def per_host(self) -> int:
        return self.workers * self.per_worker

    @property
    def pools_total(self) -> int:
        return self.hosts * self.per_host

    @property
    def total(self) -> int:
        return self.pools_total + self.extra_clients

    def as_dict(self) -> dict[str, int]:
        return {
            **asdict(self),
            "per_worker": self.per_worker,
            "per_host": self.per_host,
            "pools_total": self.pools_total,
            "total": self.total,
        }


@dataclass(frozen=True)
class ServerLimits:
    """The server's connection limits; superusers may use the reserved slots, the app may not."""

    max_connections: int
    superuser_reserved_connections: int = 3
    reserved_connections: int = 0

    @property
    def usable(self) -> int:
        return self.max_connections - self.superuser_reserved_connections - self.reserved_connections

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "usable": self.usable}


def fits(budget: Budget, limits: ServerLimits) -> bool:
    return budget.total <= limits.usable


def headroom(budget: Budget, limits: ServerLimits) -> int:
    """Free usable slots left when every pool is full (negative: overcommitted)."""
    return limits.usable - budget.total


def largest_max_size(budget: Budget, limits: ServerLimits) -> int:
    """The largest max_size per pool that fits, for the budget's hosts, workers and pools (0 if none)."""
    pools = budget.hosts * budget.workers * budget.pools_per_worker
    return max((limits.usable - budget.extra_clients) // pools, 0)


def largest_workers(budget: Budget, limits: ServerLimits) -> int:
    """The largest worker count per host that fits for the budget's max_size (0 if none)."""
    per_worker = budget.hosts * budget.per_worker
    return max((limits.usable - budget.extra_clients) // per_worker, 0)


def explain(budget: Budget, limits: ServerLimits) -> str:
    """The arithmetic in one line, as printed before a run and in its summary."""
    pools = f"{budget.hosts} hosts x {budget.workers} workers"
    if budget.pool_sizes:
        pools += f" x pools of {'+'.join(str(size) for size in budget.pool_sizes)}"
    else:
        pools += f" x {budget.pools_per_worker} pools" if budget.pools_per_worker != 1 else ""
        pools += f" x max_size {budget.max_size}"
    verdict = "fits" if fits(budget, limits) else "does NOT fit"
    return (
        f"budget {pools} + {budget.extra_clients} extra = {budget.total}; "
        f"usable {limits.usable} = max_connections {limits.max_connections}"
        f" - superuser_reserved {limits.superuser_reserved_connections}"
        f" - reserved {limits.reserved_connections}; {verdict} (headroom {headroom(budget, limits)})"
    )
