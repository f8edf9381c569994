"""Throughput and latency measured in the bursts only: the figures that tell pool sizes apart.

A run's totals mix its quiet phases with its bursts; in a 20 s run of 12 s
quiet and 8 s burst the overall requests/s is mostly the quiet phase's. The
burst phases are in the manifest's `shape`; Locust's stats history holds one
aggregated row a second with the running request count and the recent
percentiles.

Locust stamps each row with the whole second it was written in
(int(time.time())): the counts it holds were taken up to a second after its
stamp, half a second on average, which is added here.
"""

from __future__ import annotations

import statistics
from typing import Any

from loadtests.analysis.folder import RunFolder
from loadtests.shapes import BURST

_STAMP_OFFSET_S = 0.5  # the mean time between a row's whole-second stamp and its counts


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def _count_at(points: list[tuple[float, float]], t: float) -> float:
    """The running count at `t`, interpolated between the rows around it."""
    before = [(x, y) for x, y in points if x <= t]
    after = [(x, y) for x, y in points if x > t]
    if not before:
        return points[0][1] if after else 0.0
    if not after:
        return before[-1][1]
    (x0, y0), (x1, y1) = before[-1], after[0]
    return y0 + (y1 - y0) * (t - x0) / (x1 - x0)


def burst_windows(shape: list[dict[str, Any]], *, ended_s: float | None = None) -> list[tuple[float, float]]:
    """The bursts' [start, end) in load seconds; a burst cut short by the load's end only up to `ended_s`."""
    windows = []
    for phase in shape:
        if phase["phase"] != BURST:
            continue
        start, end = float(phase["start_s"]), float(phase["end_s"])
        if ended_s is not None:
            end = min(end, ended_s)
        if end > start:
            windows.append((start, end))
    return windows


def burst_figures(history: list[dict[str, str]], *, shape: list[dict[str, Any]], load_start: float | None) -> dict[str, Any]:
    """Requests, failures, requests/s and the median of the recent p95s inside the bursts."""
    none = {"available": False, "bursts": 0, "seconds": 0.0, "requests": 0, "failures": 0, "rps": None, "p95_ms": None}
    if not history or load_start is None:
        return none
    rows = [(float(r["Timestamp"]) + _STAMP_OFFSET_S - load_start, r) for r in history]
    requests = [(t, _number(r.get("Total Request Count")) or 0.0) for t, r in rows]
    failures = [(t, _number(r.get("Total Failure Count")) or 0.0) for t, r in rows]
    windows = burst_windows(shape, ended_s=requests[-1][0])
    if not windows:
        return none
    seconds = sum(end - start for start, end in windows)
    made = sum(_count_at(requests, end) - _count_at(requests, start) for start, end in windows)
    failed = sum(_count_at(failures, end) - _count_at(failures, start) for start, end in windows)
    # A row's percentiles cover the last seconds before it: those inside a burst, its first second left out.
    p95s = [
        p for t, r in rows
        if any(start + 1.0 <= t <= end for start, end in windows) and (p := _number(r.get("95%"))) is not None
    ]
    return {
        "available": True,
        "bursts": len(windows),
        "seconds": round(seconds, 2),
        "requests": int(round(made)),
        "failures": int(round(failed)),
        "rps": round(made / seconds, 2) if seconds else None,
        "p95_ms": round(statistics.median(p95s), 1) if p95s else None,
    }


def run_burst_figures(folder: RunFolder) -> dict[str, Any]:
    """summary.json's `bursts`, from the run folder."""
    return burst_figures(folder.locust_history, shape=folder.manifest.get("shape", []), load_start=folder.load_start)
