"""Connection budget arithmetic: does `hosts x workers x pools x max_size` fit the server?

Each pool counts at the most connections it may hold: `max_size` for a
psycopg or asyncpg pool, `pool_size + max_overflow` for a SQLAlchemy engine
(its QueuePool opens the overflow when requests find no free connection).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


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
    # SQLAlchemy engines: how many of max_size are overflow; None for pools without one.
    max_overflow: int | None = None

    def __post_init__(self) -> None:
        if self.max_overflow is not None and not 0 <= self.max_overflow < self.max_size:
            raise ValueError(f"max_overflow ({self.max_overflow}) must be in [0, max_size {self.max_size}): pool_size >= 1")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Budget":
        """A budget back from its `as_dict()` form (derived figures ignored; older forms lack the newer keys)."""
        return cls(
            hosts=data["hosts"], workers=data["workers"], max_size=data["max_size"],
            pools_per_worker=data.get("pools_per_worker", 1), extra_clients=data.get("extra_clients", 0),
            pool_sizes=tuple(data.get("pool_sizes") or ()), max_overflow=data.get("max_overflow"),
        )

    @classmethod
    def for_engines(cls, *, pool_size: int, max_overflow: int, **rest: int) -> "Budget":
        """SQLAlchemy engines of `pool_size + max_overflow` connections each."""
        return cls(max_size=pool_size + max_overflow, max_overflow=max_overflow, **rest)

    @property
    def engines(self) -> bool:
        return self.max_overflow is not None

    @property
    def pool_size(self) -> int:
        """SQLAlchemy's pool_size: the connections an engine keeps; max_size for other pools."""
        return self.max_size - (self.max_overflow or 0)

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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ServerLimits":
        return cls(max_connections=data["max_connections"],
                   superuser_reserved_connections=data["superuser_reserved_connections"],
                   reserved_connections=data.get("reserved_connections", 0))

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


def budget_words(*, total: int, pools_total: int, other_clients: int = 0, pools_name: str = "pools") -> str:
    """The budget with its parts named, so that no second number reads as another budget:
    "budget 33 (pools 32 + 1 harness)"; the harness's collector is what is left of the extra clients."""
    harness = total - pools_total - other_clients
    parts = [f"{pools_name} {pools_total}"] + ([f"{harness} harness"] if harness else [])
    parts += [f"{other_clients} other clients"] if other_clients else []
    return f"budget {total} ({' + '.join(parts)})" if len(parts) > 1 else f"budget {total} ({pools_name})"


PGBOUNCER_SERVER_POOLS = "PgBouncer server pools"


@dataclass(frozen=True)
class ServerSideBudget:
    """What may reach the server, in parts: the pools that reach it, the harness's own, other clients.

    Directly the app's pools reach it; behind PgBouncer only PgBouncer's server pools do, the app's
    pools being PgBouncer's clients. The live view and the run's last lines print this one budget.
    """

    total: int
    pools: int
    other_clients: int = 0
    pools_name: str = "pools"

    @classmethod
    def of(cls, budget: dict[str, Any], pooler: dict[str, Any] | None, *, harness_clients: int) -> "ServerSideBudget":
        """From the `as_dict()` forms (a manifest's, a summary's): `budget`, and `pooler` (PoolerBudget's) behind PgBouncer."""
        other_clients = max(budget.get("extra_clients", 0) - harness_clients, 0)
        if pooler:
            return cls(pooler["server_total"], pooler["server_pools"], other_clients, PGBOUNCER_SERVER_POOLS)
        return cls(budget["total"], budget["pools_total"], other_clients)

    def words(self) -> str:
        return budget_words(total=self.total, pools_total=self.pools, other_clients=self.other_clients,
                            pools_name=self.pools_name)


def explain(budget: Budget, limits: ServerLimits) -> str:
    """The arithmetic in one line, as printed before a run and in its summary."""
    pools = f"{budget.hosts} hosts x {budget.workers} workers"
    if budget.pool_sizes:
        pools += f" x pools of {'+'.join(str(size) for size in budget.pool_sizes)}"
    else:
        pools += f" x {budget.pools_per_worker} {_pools(budget)}" if budget.pools_per_worker != 1 else ""
        pools += f" x ({_sizes(budget)})" if budget.engines else f" x {_sizes(budget)}"
    verdict = "fits" if fits(budget, limits) else "does NOT fit"
    return (
        f"budget {pools} + {budget.extra_clients} extra = {budget.total}; "
        f"usable {limits.usable} = max_connections {limits.max_connections}"
        f" - superuser_reserved {limits.superuser_reserved_connections}"
        f" - reserved {limits.reserved_connections}; {verdict} (headroom {headroom(budget, limits)})"
    )


def budget_sentence(budget: dict[str, Any], server: dict[str, Any]) -> str:
    """`explain` over the figures stored in manifest.json and summary.json: the one budget sentence of a run."""
    return explain(Budget.from_dict(budget), ServerLimits.from_dict(server))


def allowed(limits: ServerLimits, *, headroom_ratio: float = 0.0) -> int:
    """Connections a deployment may plan for: the usable slots less a safety margin (a share of usable)."""
    if not 0.0 <= headroom_ratio < 1.0:
        raise ValueError(f"headroom_ratio must be in [0, 1), got {headroom_ratio!r}")
    # Rounded down: a margin of 20 % of 37 slots leaves 29, not 29.6.
    return int(limits.usable * (1.0 - headroom_ratio) + 1e-9)


def fits_with_headroom(budget: Budget, limits: ServerLimits, *, headroom_ratio: float) -> bool:
    return budget.total <= allowed(limits, headroom_ratio=headroom_ratio)


def largest_hosts(budget: Budget, limits: ServerLimits, *, headroom_ratio: float = 0.0) -> int:
    """The most hosts of the budget's workers, pools and max_size that fit (0 if none)."""
    return max((allowed(limits, headroom_ratio=headroom_ratio) - budget.extra_clients) // budget.per_host, 0)


def largest_engines(budget: Budget, limits: ServerLimits) -> list[Budget]:
    """The largest SQLAlchemy engines that fit: the budget's pool_size with more max_overflow, its
    max_overflow with more pool_size, or pool_size alone when neither fits ([] if none)."""
    cap = largest_max_size(budget, limits)
    sizes = [(budget.pool_size, cap - budget.pool_size), (cap - budget.max_overflow, budget.max_overflow)]
    fitting = [(size, overflow) for size, overflow in dict.fromkeys(sizes) if size >= 1 and overflow >= 0]
    fitting = fitting or ([(cap, 0)] if cap >= 1 else [])
    return [replace(budget, max_size=size + overflow, max_overflow=overflow) for size, overflow in fitting]


def describe(budget: Budget, limits: ServerLimits) -> list[str]:
    """What `poolcheck budget` prints: the arithmetic, the headroom and the largest values that fit."""
    pools = f"{budget.hosts} hosts x {budget.workers} workers x {budget.pools_per_worker} {_pools(budget)}"
    workers = largest_workers(budget, limits)
    share = headroom(budget, limits) / limits.usable * 100 if limits.usable > 0 else 0.0
    return [
        explain(budget, limits),
        f"headroom: {headroom(budget, limits)} of {limits.usable} usable connections ({share:.1f} %)",
        _largest_size_line(budget, limits, pools),
        f"largest workers per host with {_sizes(budget)}: {workers}"
        + _uses(replace(budget, workers=max(workers, 1)), workers),
        f"largest hosts of {budget.workers} workers x {budget.pools_per_worker} {_pools(budget)} x {_sizes(budget)}:"
        f" {largest_hosts(budget, limits)}",
    ]


def _largest_size_line(budget: Budget, limits: ServerLimits, pools: str) -> str:
    size = largest_max_size(budget, limits)
    if not budget.engines:
        return f"largest max_size per pool for {pools}: {size}" + _uses(replace(budget, max_size=max(size, 1)), size)
    engines = largest_engines(budget, limits)
    if not engines:
        return f"largest engine for {pools}: none fits"
    choices = " or ".join(_sizes(engine) for engine in engines)
    return f"largest engine for {pools}: {size} connections, {choices} (total {engines[0].total})"


def _pools(budget: Budget) -> str:
    return "engines" if budget.engines else "pools"


def _sizes(budget: Budget) -> str:
    """Each pool's size in its own library's terms."""
    if budget.engines:
        return f"pool_size {budget.pool_size} + max_overflow {budget.max_overflow}"
    return f"max_size {budget.max_size}"


def _uses(budget: Budget, largest: int) -> str:
    return f" (total {budget.total})" if largest > 0 else " (none fits)"


# -- behind PgBouncer: two levels ---------------------------------------------------


@dataclass(frozen=True)
class PoolerSettings:
    """PgBouncer's pool settings: its pool mode, the sizes of its pools, and when it closes a server connection.

    The timers are PgBouncer's own defaults, written into pgbouncer.ini and recorded in the manifest so
    that the server side's drain is told from the settings that ran, not assumed.
    """

    pool_mode: str
    default_pool_size: int
    reserve_pool_size: int
    max_client_conn: int
    server_idle_timeout: float = 600.0  # a server connection idle this long is closed
    server_lifetime: float = 3600.0  # one older than this is closed when it is next released

    def server_timers(self) -> dict[str, float]:
        return {"server_idle_timeout": self.server_idle_timeout, "server_lifetime": self.server_lifetime}


@dataclass(frozen=True)
class PoolerBudget:
    """Behind PgBouncer the app's pools are PgBouncer's clients, and only PgBouncer's
    server pools reach the server: each level has its own limit.

    clients: the app's pools (plus PgBouncer's admin clients) against `max_client_conn`;
    server:  `default_pool_size + reserve_pool_size` per database/user pair (plus the
             clients that reach the server directly) against the server's usable connections.
    """

    clients: Budget
    default_pool_size: int
    reserve_pool_size: int
    max_client_conn: int
    pairs: int = 1  # database/user pairs: the sample app is one role on one database
    admin_clients: int = 0
    server_extra_clients: int = 0

    @property
    def client_total(self) -> int:
        return self.clients.pools_total + self.admin_clients

    @property
    def server_pools(self) -> int:
        return self.pairs * (self.default_pool_size + self.reserve_pool_size)

    @property
    def server_total(self) -> int:
        return self.server_pools + self.server_extra_clients

    def clients_fit(self) -> bool:
        return self.client_total <= self.max_client_conn

    def server_fits(self, limits: ServerLimits) -> bool:
        return self.server_total <= limits.usable

    def as_dict(self, limits: ServerLimits) -> dict[str, int | bool]:
        return {
            "default_pool_size": self.default_pool_size,
            "reserve_pool_size": self.reserve_pool_size,
            "max_client_conn": self.max_client_conn,
            "pairs": self.pairs,
            "client_total": self.client_total,
            "clients_fit": self.clients_fit(),
            "server_pools": self.server_pools,
            "server_total": self.server_total,
            "server_usable": limits.usable,
            "server_fits": self.server_fits(limits),
        }


def explain_pooler(budget: PoolerBudget, limits: ServerLimits) -> list[str]:
    """Both levels, one line each, as printed before a run behind PgBouncer."""
    app = budget.clients
    clients = "fits" if budget.clients_fit() else "does NOT fit"
    server = "fits" if budget.server_fits(limits) else "does NOT fit"
    return [
        f"PgBouncer clients: {app.hosts} hosts x {app.workers} workers x {app.pools_per_worker} {_pools(app)}"
        f" x {_sizes(app)} + {budget.admin_clients} admin = {budget.client_total};"
        f" max_client_conn {budget.max_client_conn}; {clients} (headroom {budget.max_client_conn - budget.client_total})",
        f"PgBouncer server pools: {budget.pairs} database/user pair x (default_pool_size {budget.default_pool_size}"
        f" + reserve_pool_size {budget.reserve_pool_size}) + {budget.server_extra_clients} extra = {budget.server_total};"
        f" usable {limits.usable}; {server} (headroom {limits.usable - budget.server_total})",
    ]


def largest_pooler_pool_size(limits: ServerLimits, *, reserve_pool_size: int = 0, pairs: int = 1,
                             extra_clients: int = 0, headroom_ratio: float = 0.0) -> int:
    """The largest default_pool_size whose server pools fit the usable connections (0 if none)."""
    room = allowed(limits, headroom_ratio=headroom_ratio) - extra_clients
    return max(room // pairs - reserve_pool_size, 0)
