"""What a sweep's recommendation cannot promise: the grid's edge, pools never filled, one run per cell.

Each caveat is a line of the recommendation's reasons, printed only when it
holds, with the values to try next where there are some.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.budget import ServerLimits, allowed

BEHIND_PGBOUNCER = "pgbouncer_pool_size"  # a sweep row's key when its cells ran behind PgBouncer


def caveats(
    chosen: dict[str, Any],
    *,
    axes: dict[str, list[Any]] | None,
    repeat: int,
    criteria: Any,
    limits: ServerLimits,
    other_clients: int,
) -> list[str]:
    """The caveats of recommending `chosen` (a sweep row with its figures)."""
    keep = allowed(limits, headroom_ratio=criteria.headroom_ratio) - other_clients
    out = []
    if axes and BEHIND_PGBOUNCER in chosen:
        out += pooler_edge_lines(chosen, axes=axes, keep_server=keep, headroom=criteria.headroom_ratio)
    elif axes:
        out += edge_lines(chosen, axes=axes, keep=keep, headroom=criteria.headroom_ratio)
    out += unfilled_lines(chosen)
    if repeat == 1 and chosen.get("runs", 1) == 1:
        out.append(
            f"caution: one run per cell, so the spread between runs is not measured: a throughput difference"
            f" within the {criteria.throughput_margin * 100:g} % margin may be noise; --repeat 3 measures it"
        )
    return out


def next_values(values: list[int], *, upward: bool) -> list[int]:
    """Two values beyond the grid's edge: the step between its last two values, or doubling / halving."""
    ordered = sorted(values)
    if upward:
        last = ordered[-1]
        step = max(last - ordered[-2], 1) if len(ordered) > 1 else last
        return [last + step, last + 2 * step]
    first = ordered[0]
    return sorted({value for value in (first // 2, first - 1) if 1 <= value < first})


def edge_lines(chosen: dict[str, Any], *, axes: dict[str, list[Any]], keep: int, headroom: float) -> list[str]:
    """A line per axis on whose edge the chosen cell lies, with the next values that keep the headroom."""
    limit = f"keeps {headroom * 100:g} % headroom"
    return [
        line
        for axis, flag, other in (("max_size", "--max-size", "workers"), ("workers", "--workers", "max_size"))
        for line in _axis_edge(chosen, axis=axis, flag=flag, values=axes.get(axis) or [], limit=limit,
                               with_=f" with {other} {chosen[other]}", edge="the budget's",
                               fits=lambda value, other=other: value * chosen[other] <= keep)
    ]


def pooler_edge_lines(chosen: dict[str, Any], *, axes: dict[str, list[Any]], keep_server: int, headroom: float) -> list[str]:
    """Behind PgBouncer each level has its own edge: the app's pools are PgBouncer's clients, bounded by
    max_client_conn; only default_pool_size (+ reserve) reaches the server, bounded by its usable connections."""
    clients_left = chosen["max_client_conn"] - chosen["admin_clients"]
    limit = f"stays within max_client_conn {chosen['max_client_conn']}"
    out = [
        line
        for axis, flag, other in (("max_size", "--max-size", "workers"), ("workers", "--workers", "max_size"))
        for line in _axis_edge(chosen, axis=axis, flag=flag, values=axes.get(axis) or [], limit=limit,
                               with_=f" with {other} {chosen[other]}", edge="PgBouncer's max_client_conn",
                               fits=lambda value, other=other: value * chosen[other] <= clients_left)
    ]
    others_on_server = chosen["server_budget"] - chosen["server_connections"]  # the clients that reach it directly
    reserve = chosen["server_connections"] - chosen[BEHIND_PGBOUNCER]
    out += _axis_edge(chosen, axis=BEHIND_PGBOUNCER, flag="--pgbouncer-pool-size", values=axes.get(BEHIND_PGBOUNCER) or [],
                      limit=f"keeps {headroom * 100:g} % of the server's connections free", with_="",
                      edge="the server's budget", name="default_pool_size",
                      fits=lambda value: value + reserve + others_on_server <= keep_server)
    return out


def _axis_edge(
    chosen: dict[str, Any], *, axis: str, flag: str, values: list[int], limit: str, with_: str, edge: str,
    fits: Callable[[int], bool], name: str = "",
) -> list[str]:
    """The line, if any, for one axis: the chosen value at the grid's largest or smallest, and what to try."""
    values, here, name = sorted(values), chosen[axis], name or axis
    if len(values) < 2:
        return []
    if here == values[-1]:
        beyond = [v for v in next_values(values, upward=True) if fits(v)]
        if beyond:
            return [f"on the edge of the grid: {name} {here} is its largest, and the best may lie beyond it;"
                    f" try {flag} {','.join(map(str, [here, *beyond]))}"]
        return [f"{name} {here} is the grid's largest, and no larger {name} {limit}{with_}: the edge is {edge}"]
    if here == values[0]:
        below = next_values(values, upward=False)
        if below:
            return [f"on the edge of the grid: {name} {here} is its smallest, and a smaller one may do as well;"
                    f" try {flag} {','.join(map(str, [*below, here]))}"]
    return []


def unfilled_lines(chosen: dict[str, Any]) -> list[str]:
    """Whether the recommended pools were filled at the peak; a smaller max_size when they were not."""
    used = chosen.get("peak_per_worker")
    if used is None:
        return []
    if used < chosen["max_size"]:
        return [
            f"the pools held at most {used} of max_size {chosen['max_size']} connections per worker at the peak:"
            f" max_size {used} would do for this load; try --max-size {used},{chosen['max_size']}"
        ]
    return [f"the pools filled max_size {chosen['max_size']} at the peak ({used} connections in one worker)"]
