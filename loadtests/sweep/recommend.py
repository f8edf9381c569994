"""The sweep's recommendation: the smallest pools that keep the best throughput, within budget and SLO.

Among the cells that fit the server with the requested headroom and meet the
SLO, take the best median throughput; every cell within the margin of it is
as good, so the one with the fewest connections wins. A pool that is small
and saturated is the point (HikariCP's pool-sizing advice), measured here
for the user's own load instead of taken on trust.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from loadtests.budget import Budget, ServerLimits, allowed, largest_hosts, largest_pooler_pool_size
from loadtests.sweep.caveats import caveats


@dataclass(frozen=True)
class Criteria:
    """What a cell must meet to be recommended."""

    headroom_ratio: float = 0.2
    slo_p95_ms: float | None = None
    max_failure_ratio: float = 0.0
    throughput_margin: float = 0.05

    def __post_init__(self) -> None:
        if not 0.0 <= self.headroom_ratio < 1.0:
            raise ValueError(f"--headroom must be at least 0 % and below 100 %, got {self.headroom_ratio * 100:g} %")
        if self.slo_p95_ms is not None and self.slo_p95_ms <= 0:
            raise ValueError(f"--slo-p95-ms must be positive, got {self.slo_p95_ms:g}")
        if not 0.0 <= self.throughput_margin < 1.0:
            raise ValueError(f"throughput_margin must be in [0, 1), got {self.throughput_margin!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cell_name(row: dict[str, Any]) -> str:
    pooler = f", PgBouncer default_pool_size {row['pgbouncer_pool_size']}" if "pgbouncer_pool_size" in row else ""
    return f"{row['workers']} workers x max_size {row['max_size']} ({row['pool_kind']}{pooler})"


def server_side_total(row: dict[str, Any], *, other_clients: int) -> int:
    """The connections the cell as deployed holds on the server: its pools, or behind PgBouncer its server pools."""
    if "server_connections" in row:
        return int(row["server_connections"]) + other_clients
    return production_budget(row, other_clients=other_clients).total


def ranked_connections(row: dict[str, Any]) -> int:
    """What "fewest connections" compares: the server's side (PgBouncer's server pools behind it)."""
    return int(row.get("server_connections", row["connections"]))


def production_budget(row: dict[str, Any], *, other_clients: int) -> Budget:
    """The cell as deployed: its pools and the other clients, without the harness's collector."""
    return Budget(hosts=row["hosts"], workers=row["workers"], max_size=row["max_size"], extra_clients=other_clients)


def exclusions(row: dict[str, Any], *, criteria: Criteria, limits: ServerLimits, other_clients: int) -> list[str]:
    """Why a cell cannot be recommended; empty when it qualifies."""
    if row["status"] != "ran":
        return [row.get("refused") or f"no complete run ({row['status']})"]
    out = []
    deployed = server_side_total(row, other_clients=other_clients)
    limit = allowed(limits, headroom_ratio=criteria.headroom_ratio)
    if deployed > limit:
        out.append(
            f"{deployed} {'server ' if 'server_connections' in row else ''}connections above {limit}, the usable {limits.usable}"
            f" less {criteria.headroom_ratio * 100:g} % headroom"
        )
    if row["passes"] * 2 <= row["runs"]:
        out.append(f"verdict pass in only {row['passes']} of {row['runs']} runs")
    if row["failure_ratio"] > criteria.max_failure_ratio:
        out.append(f"failure ratio {row['failure_ratio']:.4f} above --max-failure-ratio {criteria.max_failure_ratio:g}")
    if criteria.slo_p95_ms is not None and row["p95_ms"] > criteria.slo_p95_ms:
        out.append(f"p95 {row['p95_ms']:g} ms above --slo-p95-ms {criteria.slo_p95_ms:g}")
    return out


def pooler_alternative(
    rows: list[dict[str, Any]], *, criteria: Criteria, limits: ServerLimits, other_clients: int
) -> dict[str, Any] | None:
    """When no cell fits the server directly: the PgBouncer pool size whose server connections would.

    None when some cell fits directly (its exclusion is not the budget). Cells refused before
    they ran count too: preflight refuses exactly those that do not fit.
    """
    limit = allowed(limits, headroom_ratio=criteria.headroom_ratio)
    if not rows or any(server_side_total(row, other_clients=other_clients) <= limit for row in rows):
        return None
    pool_size = largest_pooler_pool_size(limits, extra_clients=other_clients, headroom_ratio=criteria.headroom_ratio)
    if pool_size < 1:
        return None
    clients = max(production_budget(row, other_clients=0).total for row in rows)
    return {
        "pool_mode": "transaction",
        "default_pool_size": pool_size,
        "reserve_pool_size": 0,
        "max_client_conn_at_least": clients,
        "reason": (
            f"no cell fits the server directly: every one needs more than {limit} connections"
            f" ({limits.usable} usable less {criteria.headroom_ratio * 100:g} % headroom). Through PgBouncer in"
            f" transaction mode, default_pool_size {pool_size} (reserve_pool_size 0) keeps the server side within"
            f" {limit} with max_client_conn at least {clients}; try it with"
            f" `poolcheck run --pgbouncer transaction --pgbouncer-pool-size {pool_size} --no-prepared-statements`"
        ),
    }


def _pick(qualified: list[dict[str, Any]], *, margin: float) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The best-throughput cell, the smallest cell within `margin` of it, and how many cells are within it."""
    best = max(qualified, key=lambda r: r["rps"])
    floor = best["rps"] * (1.0 - margin)
    near = [r for r in qualified if r["rps"] >= floor]
    chosen = min(near, key=lambda r: (ranked_connections(r), -r["rps"], r["workers"]))
    return best, chosen, len(near)


def recommend(
    rows: list[dict[str, Any]],
    *,
    criteria: Criteria,
    limits: ServerLimits,
    other_clients: int = 0,
    axes: dict[str, list[Any]] | None = None,
    repeat: int = 1,
) -> dict[str, Any]:
    """The recommended cell (or none) with every reason, and why each other cell was left out."""
    excluded = {
        row["key"]: why
        for row in rows
        if (why := exclusions(row, criteria=criteria, limits=limits, other_clients=other_clients))
    }
    qualified = [row for row in rows if row["key"] not in excluded]
    if not qualified:
        reasons = ["no cell qualifies: each one is left out for the reasons listed"]
        behind = pooler_alternative(rows, criteria=criteria, limits=limits, other_clients=other_clients)
        if behind is not None:
            reasons.append(behind["reason"])
            return {"cell": None, "reasons": reasons, "excluded": excluded, "pgbouncer": behind}
        return {"cell": None, "reasons": reasons, "excluded": excluded}
    best, chosen, near = _pick(qualified, margin=criteria.throughput_margin)
    one_host = production_budget({**chosen, "hosts": 1}, other_clients=other_clients)
    choice = {
        "cell": chosen["key"],
        "pool_kind": chosen["pool_kind"],
        "workers": chosen["workers"],
        "max_size": chosen["max_size"],
        "connections_per_host": one_host.per_host,
        "best_cell": best["key"],
        "best_rps": best["rps"],
        "hosts_within_headroom": largest_hosts(one_host, limits, headroom_ratio=criteria.headroom_ratio),
        "hosts_at_most": largest_hosts(one_host, limits),
        **({"pgbouncer_pool_size": chosen["pgbouncer_pool_size"], "server_connections": chosen["server_connections"]}
           if "pgbouncer_pool_size" in chosen else {}),
    }
    reasons = _reasons(choice, chosen, best, criteria=criteria, limits=limits, other_clients=other_clients, near=near)
    reasons += caveats(chosen, axes=axes, repeat=repeat, criteria=criteria, limits=limits, other_clients=other_clients)
    return {**choice, "peak_per_worker": chosen.get("peak_per_worker"), "reasons": reasons,
            "advice": list(chosen.get("advice", [])), "excluded": excluded}


def _hosts_line(choice: dict[str, Any], chosen: dict[str, Any]) -> str:
    if "server_connections" in chosen:
        # PgBouncer's server pools do not grow with the app's hosts; its max_client_conn bounds those.
        return (f"behind PgBouncer the server side stays at {chosen['server_connections']} connections"
                f" (default_pool_size {chosen['pgbouncer_pool_size']} + reserve) whatever the hosts;"
                " each host's pools count against max_client_conn instead")
    return (f"the server takes {choice['hosts_within_headroom']} hosts of this configuration within the headroom"
            f" ({choice['hosts_at_most']} with none)")


def _reasons(
    choice: dict[str, Any],
    chosen: dict[str, Any],
    best: dict[str, Any],
    *,
    criteria: Criteria,
    limits: ServerLimits,
    other_clients: int,
    near: int,
) -> list[str]:
    margin = criteria.throughput_margin * 100
    deployed = server_side_total(chosen, other_clients=other_clients)
    side = "PgBouncer's server connections" if "server_connections" in chosen else "connections"
    slo = "(no --slo-p95-ms given)" if criteria.slo_p95_ms is None else f"within --slo-p95-ms {criteria.slo_p95_ms:g}"
    throughput = (
        f"{chosen['rps']:g} req/s in the bursts, the best throughput among the qualifying cells"
        if chosen["key"] == best["key"]
        else f"{chosen['rps']:g} req/s in the bursts is within {margin:g} % of the best qualifying cell,"
        f" {cell_name(best)} at {best['rps']:g} req/s with {ranked_connections(best)} {side}"
    )
    fewest = (
        [f"{ranked_connections(chosen)} {side}, the fewest among the {near} cells within {margin:g} % of the best throughput"]
        if near > 1 else []
    )
    reasons = [
        throughput,
        *fewest,
        f"p95 {chosen['p95_ms']:g} ms {slo}; failure ratio {chosen['failure_ratio']:.4f}"
        f" within {criteria.max_failure_ratio:g}",
        f"fits with {criteria.headroom_ratio * 100:g} % headroom: {deployed} {side}"
        f" (incl. {other_clients} other clients) <= {allowed(limits, headroom_ratio=criteria.headroom_ratio)}"
        f" of {limits.usable} usable",
        _hosts_line(choice, chosen),
    ]
    spread = max(chosen.get("rps_spread_pct") or 0.0, best.get("rps_spread_pct") or 0.0)
    if spread > margin:
        reasons.append(
            f"caution: throughput varied by up to {spread:.0f} % between repeats, more than the {margin:g} % margin;"
            " run more --repeat on a quieter machine before relying on the choice"
        )
    return reasons
