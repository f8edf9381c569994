"""`poolcheck budget --pgbouncer`: both levels of the budget and one answer line, in PgBouncer's terms.

Behind PgBouncer the app's pools are its clients (against `max_client_conn`)
and only its server pools reach the server (`default_pool_size +
reserve_pool_size` per database/user pair, against the usable connections).
The answer keeps the headroom target on the server side, and counts every
host of a rolling deploy's peak among the clients.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loadtests.budget import Budget, PoolerBudget, PoolerSettings, ServerLimits, allowed, largest_pooler_pool_size


@dataclass(frozen=True)
class PoolerAnswer:
    """The largest default_pool_size that keeps the headroom, and the max_client_conn the deploy's peak needs."""

    peak_hosts: int
    keep: int  # server connections the deployment may hold: usable less the headroom
    default_pool_size: int  # the largest that keeps the headroom (0: none does)
    max_client_conn: int  # the fewest that takes every client at the peak
    fits_now: bool  # both levels fit at the peak
    keeps_headroom: bool  # ... and the server side leaves the headroom free


def pooler_budget(plan: Budget, settings: PoolerSettings, *, hosts: int | None = None) -> PoolerBudget:
    """The two levels for `plan` (with `hosts` hosts, e.g. a deploy's peak); its other clients reach the server."""
    return PoolerBudget(
        clients=replace(plan, hosts=plan.hosts if hosts is None else hosts),
        default_pool_size=settings.default_pool_size,
        reserve_pool_size=settings.reserve_pool_size,
        max_client_conn=settings.max_client_conn,
        server_extra_clients=plan.extra_clients,
    )


def pooler_answer(plan: Budget, settings: PoolerSettings, limits: ServerLimits, *, headroom_ratio: float,
                  surge_hosts: int = 0) -> PoolerAnswer:
    peak = pooler_budget(plan, settings, hosts=plan.hosts + surge_hosts)
    keep = allowed(limits, headroom_ratio=headroom_ratio)
    return PoolerAnswer(
        peak_hosts=peak.clients.hosts,
        keep=keep,
        default_pool_size=largest_pooler_pool_size(limits, reserve_pool_size=settings.reserve_pool_size,
                                                   extra_clients=plan.extra_clients, headroom_ratio=headroom_ratio),
        max_client_conn=peak.client_total,
        fits_now=peak.clients_fit() and peak.server_fits(limits),
        keeps_headroom=peak.clients_fit() and peak.server_total <= keep,
    )


def pooler_answer_lines(plan: Budget, settings: PoolerSettings, limits: ServerLimits, *, headroom_ratio: float,
                        surge_hosts: int = 0) -> list[str]:
    """The headroom on the server side, and one answer line naming default_pool_size and max_client_conn."""
    found = pooler_answer(plan, settings, limits, headroom_ratio=headroom_ratio, surge_hosts=surge_hosts)
    peak = pooler_budget(plan, settings, hosts=found.peak_hosts)
    target = f"{headroom_ratio * 100:g} % headroom"
    lines = []
    if surge_hosts:
        lines.append(f"during a rolling deploy (+{surge_hosts} host{'s' if surge_hosts != 1 else ''}):"
                     f" {peak.client_total} PgBouncer clients; max_client_conn {settings.max_client_conn}")
    if peak.server_total <= found.keep:
        lines.append(f"{target} kept on the server side: {peak.server_total} <= {found.keep} of {limits.usable} usable")
    else:
        lines.append(f"{target} not kept on the server side: {peak.server_total} > {found.keep}"
                     f" ({limits.usable} usable less {target})")
    held = peak.default_pool_size + peak.reserve_pool_size
    if settings.pool_mode == "session" and peak.clients.pools_total > held:
        # Session pooling gives each client a server connection for as long as it stays connected.
        lines.append(f"session pooling: each of the {peak.clients.pools_total} client connections holds a server"
                     f" connection while connected; beyond {held} they wait in PgBouncer's queue")
    return [*lines, _answer_line(settings, found, limits=limits, headroom=target, surge_hosts=surge_hosts)]


def _answer_line(settings: PoolerSettings, found: PoolerAnswer, *, limits: ServerLimits, headroom: str,
                 surge_hosts: int) -> str:
    deploy = " during a deploy" if surge_hosts else ""
    where = (f"keeping {headroom} of {limits.usable} usable, with {found.peak_hosts}"
             f" host{'s' if found.peak_hosts != 1 else ''}{deploy}")
    if found.default_pool_size < 1:
        return (f"answer: no PgBouncer pool size fits {where}: lower reserve_pool_size or --other-clients,"
                " or a larger max_connections")
    verdict = "your setting fits" if found.keeps_headroom else "your setting does NOT" + (
        " keep the headroom" if found.fits_now else " fit")
    return (f"answer: behind PgBouncer ({settings.pool_mode} pooling) set default_pool_size <= {found.default_pool_size}"
            f" (reserve_pool_size {settings.reserve_pool_size}) and max_client_conn >= {found.max_client_conn}, {where}"
            f" (now default_pool_size {settings.default_pool_size}, max_client_conn {settings.max_client_conn}: {verdict})")
