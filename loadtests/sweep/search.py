"""`poolcheck sweep --search`: the full grid's recommendation from fewer cells.

The recommendation is the cell with the fewest connections whose throughput
is within the margin of the best. The search runs, for each pool kind and
worker count, the largest max_size that keeps the headroom (the best
throughput is among those when a larger pool never slows a worker down);
then, per worker count, it bisects max_size for the smallest pool still
within the margin (throughput that does not fall as max_size grows), skipping
cells with more connections than the best candidate found so far. Cells over
the headroom are never run: the full grid could not recommend them either.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.budget import ServerLimits, allowed
from loadtests.sweep.recommend import Criteria, exclusions

Row = dict[str, Any]


def search(
    cells: list[dict[str, Any]],
    evaluate: Callable[[str], Row],
    *,
    criteria: Criteria,
    limits: ServerLimits,
    other_clients: int = 0,
) -> list[str]:
    """The keys of the cells run, in order; `evaluate(key)` runs one cell and returns its sweep row."""
    keep = allowed(limits, headroom_ratio=criteria.headroom_ratio) - other_clients
    lines: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for cell in cells:
        if cell.get("refused") is None and connections(cell) <= keep:
            lines.setdefault((cell["pool_kind"], cell["workers"]), []).append(cell)
    for line in lines.values():
        line.sort(key=lambda cell: cell["max_size"])
    rows: dict[str, Row] = {}

    def good(key: str, floor: float) -> bool:
        if key not in rows:
            rows[key] = evaluate(key)
        row = rows[key]
        return not exclusions(row, criteria=criteria, limits=limits, other_clients=other_clients) and row["rps"] >= floor

    frontier = {name: line[-1]["key"] for name, line in sorted(lines.items())}
    for key in frontier.values():
        good(key, 0.0)
    qualified = [rows[key] for key in frontier.values() if good(key, 0.0)]
    if not qualified:
        return list(rows)
    floor = max(row["rps"] for row in qualified) * (1.0 - criteria.throughput_margin)
    fewest = min(rows[key]["connections"] for key in frontier.values() if good(key, floor))
    for name, line in sorted(lines.items()):
        if not good(frontier[name], floor):
            continue  # even its largest pool is not within the margin: a smaller one is not either
        smaller = [cell for cell in line[:-1] if connections(cell) <= fewest]
        low, high = 0, len(smaller)  # smaller[high] stands for the frontier, known good
        while low < high:
            middle = (low + high) // 2
            if good(smaller[middle]["key"], floor):
                high = middle
            else:
                low = middle + 1
        if low < len(smaller):
            fewest = min(fewest, rows[smaller[low]["key"]]["connections"])
    return list(rows)


def connections(cell: dict[str, Any]) -> int:
    """The connections a cell's pools may hold (sweep.json's cell record)."""
    return int(cell["budget"]["pools_total"])
