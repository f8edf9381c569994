"""What the lifecycle figures may assume of a worker's pools: the manifest's declared pools, nothing else.

The sample app's pool is the harness's own, so all of it is known. For an app
of your own, a setting nobody declared is None here, and the figure that needs
it says "not known" instead of assuming psycopg's defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtests.pools import PoolSpec, drain_idle, per_worker_min, read_pools, shortest_lifetime


@dataclass(frozen=True)
class KnownPools:
    per_worker_min: int | None  # connections a worker keeps when idle
    per_worker_max: int | None
    drain_idle: float | None  # the max_idle that paces a worker's drain; 0: no pool can shrink
    max_lifetime: float | None  # the shortest declared max_lifetime


def known_pools(manifest: dict[str, Any]) -> KnownPools:
    config = manifest["config"]
    if "pools" in manifest:
        pools = read_pools(manifest["pools"])
    else:  # manifests older than declared pools: the sample app's settings
        pools = [PoolSpec(str(config.get("pool_kind")), config["max_size"], config["min_size"],
                          config["max_idle"], config["max_lifetime"])]
    return KnownPools(
        per_worker_min=per_worker_min(pools),
        per_worker_max=sum(p.max_size for p in pools) if pools else None,
        drain_idle=drain_idle(pools),
        max_lifetime=shortest_lifetime(pools),
    )
