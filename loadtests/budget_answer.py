"""The production question in one answer: does the deployment fit, during a rolling deploy too, and what to set.

A rolling deploy starts the new hosts before it stops the old ones: for a
while the server sees `hosts + surge_hosts` hosts, each with full pools. The
answer keeps the headroom target (a share of the usable connections left
free) at that peak, and says it in the pool's own terms: max_size for
psycopg and asyncpg pools, pool_size + max_overflow for SQLAlchemy engines,
the sum of a worker's pools for an app with pools of several sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from loadtests.budget import Budget, ServerLimits, allowed, explain, fits

DEFAULT_HEADROOM = 0.20  # as `poolcheck run --headroom` and the sweep's


@dataclass(frozen=True)
class Answer:
    """The largest pools that keep the headroom with every host of the deploy's peak up."""

    peak_hosts: int
    keep: int  # connections the deployment may hold: usable less the headroom, rounded down
    per_worker: int  # the most connections one worker's pools may hold together (0: none fits)
    fits_now: bool  # the plan fits the usable connections at the peak
    keeps_headroom: bool  # ... and leaves the headroom free


def answer(budget: Budget, limits: ServerLimits, *, headroom_ratio: float, surge_hosts: int = 0) -> Answer:
    """The largest per-worker pools for `budget.hosts + surge_hosts` hosts within `headroom_ratio` of usable."""
    if surge_hosts < 0:
        raise ValueError(f"surge_hosts must not be negative, got {surge_hosts}")
    peak = replace(budget, hosts=budget.hosts + surge_hosts)
    keep = allowed(limits, headroom_ratio=headroom_ratio)
    per_worker = max((keep - budget.extra_clients) // (peak.hosts * peak.workers), 0)
    return Answer(
        peak_hosts=peak.hosts, keep=keep, per_worker=per_worker,
        fits_now=fits(peak, limits), keeps_headroom=peak.total <= keep,
    )


def answer_lines(budget: Budget, limits: ServerLimits, *, headroom_ratio: float, surge_hosts: int = 0) -> list[str]:
    """What `poolcheck budget` adds to the arithmetic: the deploy's peak, the headroom, and one answer line."""
    found = answer(budget, limits, headroom_ratio=headroom_ratio, surge_hosts=surge_hosts)
    peak = replace(budget, hosts=found.peak_hosts)
    lines = []
    if surge_hosts:
        lines.append(f"during a rolling deploy (+{surge_hosts} {_plural(surge_hosts, 'host')}): " + explain(peak, limits))
    target = f"{headroom_ratio * 100:g} % headroom"
    if found.keeps_headroom:
        lines.append(f"{target} kept: {peak.total} <= {found.keep} of {limits.usable} usable")
    else:
        lines.append(f"{target} not kept: {peak.total} > {found.keep} ({limits.usable} usable less {target})")
    return [*lines, _answer_line(budget, found, limits=limits, headroom=target, surge_hosts=surge_hosts)]


def _answer_line(budget: Budget, found: Answer, *, limits: ServerLimits, headroom: str, surge_hosts: int) -> str:
    deploy = " during a deploy" if surge_hosts else ""
    where = (f"with {found.peak_hosts} {_plural(found.peak_hosts, 'host')} x {budget.workers} workers{deploy},"
             f" keeping {headroom} of {limits.usable} usable")
    if found.per_worker < budget.pools_per_worker or (budget.pool_sizes and found.per_worker < len(budget.pool_sizes)):
        return f"answer: no pool size fits {where}: fewer workers or hosts, or a larger max_connections"
    verdict = "your setting fits" if found.keeps_headroom else "your setting does NOT" + (
        " keep the headroom" if found.fits_now else " fit")
    if budget.pool_sizes:
        now = "+".join(map(str, budget.pool_sizes))
        return (f"answer: set a worker's pools to <= {found.per_worker} connections together, e.g. "
                f"{'+'.join(map(str, _scaled(budget.pool_sizes, found.per_worker)))}, {where} (now {now} = "
                f"{sum(budget.pool_sizes)}: {verdict})")
    per_pool = found.per_worker // budget.pools_per_worker
    pools = f" per pool ({budget.pools_per_worker} per worker)" if budget.pools_per_worker > 1 else ""
    if budget.engines:
        size = min(budget.pool_size, per_pool)
        return (f"answer: set pool_size + max_overflow <= {per_pool}{pools}, e.g. pool_size {size} + max_overflow"
                f" {per_pool - size}, {where} (now pool_size {budget.pool_size} + max_overflow {budget.max_overflow}"
                f" = {budget.max_size}: {verdict})")
    return f"answer: set max_size <= {per_pool}{pools} {where} (now {budget.max_size}: {verdict})"


def _scaled(sizes: tuple[int, ...], total: int) -> list[int]:
    """Pool sizes in the same proportions, each at least 1, summing to at most `total`."""
    scale = min(total / sum(sizes), 1.0)
    out = [max(int(size * scale), 1) for size in sizes]
    while sum(out) > total and max(out) > 1:
        out[out.index(max(out))] -= 1
    return out


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


def pool_sizes_plan(
    sizes: tuple[int, ...], *, hosts: int, workers: int, extra_clients: int, **others: int | None
) -> Budget:
    """A worker of pools of several sizes; ValueError names an option given beside --pool-sizes that clashes."""
    clashing = [name for name, value in others.items() if value is not None and (name, value) != ("pools_per_worker", 1)]
    if clashing:
        raise ValueError(f"--pool-sizes gives every pool's size: leave out --{clashing[0].replace('_', '-')}")
    if any(size < 1 for size in sizes):
        raise ValueError(f"--pool-sizes: every size must be at least 1, got {','.join(map(str, sizes))}")
    return Budget(hosts=hosts, workers=workers, max_size=max(sizes), pools_per_worker=len(sizes), pool_sizes=sizes,
                  extra_clients=extra_clients)
