"""What the parts of a run read of its settings, derived from RunConfig's fields: the budget, the
declared pools, the load's stages, the sample app's environment, the settings as stored in results.

RunConfig takes these as a base class, so `config.budget` reads as before; they live here to keep
the settings and their checks (loadtests/config.py) apart from what is computed from them.
"""

from __future__ import annotations

from typing import Any

from loadtests.addresses import MasterBind, parse_bind
from loadtests.budget import Budget, ServerLimits
from loadtests.faults import Fault, parse_fault
from loadtests.pools import PoolSpec, parse_pool, pools_label
from loadtests.redact import redact_dsn
from loadtests.shapes import Stage, burst_stages
from loadtests.sources.attribution import WatchFilter, parse_watch_filter

COLLECTOR_CLIENTS = 1  # the collector's own connection counts in the budget


class RunConfigViews:
    """Derived views of a RunConfig; every attribute they read is one of its fields or properties.

    No annotations here: pydantic would take them for fields of the model.
    """

    def fault_plan(self) -> list[Fault]:
        return sorted((parse_fault(spec) for spec in self.faults), key=lambda f: f.at_s)

    @property
    def embedded(self) -> bool:
        return self.dsn is None

    @property
    def budget(self) -> Budget:
        if self.engines:
            assert self.pool_size is not None and self.max_overflow is not None
            return Budget.for_engines(
                hosts=self.hosts, workers=self.workers, pool_size=self.pool_size, max_overflow=self.max_overflow,
                pools_per_worker=self.pools_per_worker, extra_clients=COLLECTOR_CLIENTS + self.other_clients,
            )
        sizes = tuple(pool.max_size for pool in self.declared_pools) if self.pools else self.pool_sizes
        return Budget(
            hosts=self.hosts,
            workers=self.workers,
            max_size=max(sizes, default=self.max_size),
            pools_per_worker=len(sizes) or self.pools_per_worker,
            pool_sizes=sizes,
            extra_clients=COLLECTOR_CLIENTS + self.other_clients,
        )

    @property
    def declared_pools(self) -> list[PoolSpec]:
        """Each pool of one worker with what is known of it (loadtests/pools.py).

        The sample app's pool is the harness's own: all of it is known. An app
        of your own has what was declared: `--pool`, else `--pool-sizes` (sizes
        only), else `--pools-per-worker` pools of the settings given.
        """
        if self.pools:
            return [parse_pool(spec) for spec in self.pools]
        if self.target_url is None:
            return [PoolSpec(self.pool_kind, self.max_size, self.min_size, self.max_idle, self.max_lifetime)]
        given = self.model_fields_set
        if self.pool_sizes:
            return [PoolSpec("pool", size) for size in self.pool_sizes]
        known = {name: getattr(self, name) for name in ("min_size", "max_idle", "max_lifetime") if name in given}
        kind = self.pool_kind if "pool_kind" in given else "pool"
        return [PoolSpec(kind, self.max_size, **known) for _ in range(self.pools_per_worker)]

    def run_label(self) -> str:
        """The run folder's name: the sample app's pool settings, or `target-` and the declared pools."""
        if self.target_url is None:
            return f"w{self.workers}-m{self.max_size}-{self.pool_kind}"
        return f"target-w{self.workers}-{pools_label(self.budget.pool_sizes or (self.max_size,) * self.pools_per_worker)}"

    @property
    def watch(self) -> WatchFilter:
        return parse_watch_filter(self.watch_filter)

    @property
    def distributed(self) -> bool:
        return self.locust_workers + self.locust_remote_workers > 0

    def master_bind(self) -> MasterBind | None:
        """Where the Locust master listens; None for a single Locust process."""
        return parse_bind(self.locust_master_bind) if self.locust_master_bind else None

    def embedded_limits(self) -> ServerLimits:
        return ServerLimits(
            max_connections=self.max_connections,
            superuser_reserved_connections=self.superuser_reserved_connections,
            reserved_connections=self.reserved_connections,
        )

    def embedded_server_settings(self) -> dict[str, object]:
        return {
            "max_connections": self.max_connections,
            "superuser_reserved_connections": self.superuser_reserved_connections,
            "reserved_connections": self.reserved_connections,
            **self.server_settings,
        }

    def stages(self) -> list[Stage]:
        return burst_stages(
            total_seconds=self.duration,
            baseline_users=self.baseline_users,
            burst_users=self.burst_users,
            burst_seconds=self.burst_seconds,
            quiet_seconds=self.quiet_seconds,
            cycles=self.cycles,
        )

    def app_environment(self, database_url: str) -> dict[str, str]:
        """The sample app's settings (see app/settings.py) for this run."""
        return {
            "DATABASE_URL": database_url,
            "POOL_KIND": self.pool_kind,
            "POOL_MIN_SIZE": str(self.min_size),
            "POOL_MAX_SIZE": str(self.max_size),
            "POOL_MAX_OVERFLOW": str(self.max_overflow or 0),
            "POOL_MAX_IDLE": str(self.max_idle),
            "POOL_MAX_LIFETIME": str(self.max_lifetime),
            "POOL_TIMEOUT": str(self.pool_timeout),
            "POOL_MAX_WAITING": str(self.max_waiting),
            "POOL_CHECK": "true" if self.pool_check else "false",
            "POOL_PREPARE": "true" if self.prepared_statements else "false",
            "APP_PATTERN": self.app_pattern,
            "MAX_REQUESTS": str(self.max_requests),
            "PRELOAD_APP": "1" if self.preload else "0",
        }

    def public(self) -> dict[str, Any]:
        """The settings as stored in results: JSON types, passwords masked."""
        data = self.model_dump(mode="json")
        if data["dsn"]:
            data["dsn"] = redact_dsn(data["dsn"])
        return data
