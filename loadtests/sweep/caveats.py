"""What a sweep's recommendation cannot promise: the grid's edge, pools never filled, one run per cell.

Each caveat is a line of the recommendation's reasons, printed only when it
holds, with the values to try next where there are some.
"""

from __future__ import annotations

from typing import Any

from loadtests.budget import ServerLimits, allowed


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
    if axes:
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
    out = []
    for axis, flag, other in (("max_size", "--max-size", "workers"), ("workers", "--workers", "max_size")):
        values = sorted(axes.get(axis) or [])
        if len(values) < 2:
            continue
        here = chosen[axis]
        if here == values[-1]:
            beyond = [v for v in next_values(values, upward=True) if v * chosen[other] <= keep]
            if beyond:
                out.append(
                    f"on the edge of the grid: {axis} {here} is its largest, and the best may lie beyond it;"
                    f" try {flag} {','.join(map(str, [here, *beyond]))}"
                )
            else:
                out.append(
                    f"{axis} {here} is the grid's largest, and no larger {axis} keeps {headroom * 100:g} % headroom"
                    f" with {other} {chosen[other]}: the edge is the budget's"
                )
        elif here == values[0]:
            below = next_values(values, upward=False)
            if below:
                out.append(
                    f"on the edge of the grid: {axis} {here} is its smallest, and a smaller one may do as well;"
                    f" try {flag} {','.join(map(str, [*below, here]))}"
                )
    return out


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
