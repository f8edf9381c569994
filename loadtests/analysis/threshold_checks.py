"""Thresholds checked against a run's figures: a pure function of the summary and the configured thresholds.

A threshold whose figure the run could not measure (no pool telemetry, no
server log) fails: a limit that was asked for and cannot be shown to hold is
not met.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.headroom import headroom_of
from loadtests.thresholds import Threshold, parse_thresholds


def measured_figures(summary: dict[str, Any], *, other_clients: int) -> dict[str, float | None]:
    """Every figure a threshold can name, from a summary's sections; None when the run did not measure it."""
    requests = summary["requests"]
    pool = summary.get("pool") if isinstance(summary.get("pool"), dict) else {}
    served, waited = pool.get("requests_total"), pool.get("wait_ms_total")
    exact = summary.get("exact") if isinstance(summary.get("exact"), dict) else {}
    exact_peak = next((exact[k] for k in ("peak", "peak_connections", "max_concurrent") if k in exact), None)
    headroom = headroom_of(summary, other_clients=other_clients)
    return {
        "p50": requests["p50_ms"],
        "p95": requests["p95_ms"],
        "p99": requests["p99_ms"],
        "failures": requests["failures"],
        "failure_ratio": requests["failure_ratio"],
        "rps": requests["rps"],
        "peak_connections": exact_peak if exact_peak is not None else summary["peak_connections"],
        "headroom": headroom.free,
        "headroom_share": headroom.share,
        "pool_wait_mean": waited / served if pool.get("available") and served else None,
        "refused": exact.get("refusals"),
    }


def check(threshold: Threshold, figures: dict[str, float | None]) -> dict[str, Any]:
    """One threshold's entry of summary.json: its expression, the value measured, the limit, and whether it passed."""
    measured = figures.get(threshold.measure)
    return {
        "expression": threshold.expression,
        "metric": threshold.metric,
        "measured": None if measured is None else round(float(measured), 6),
        "measured_text": "not measured" if measured is None else threshold.show(measured),
        "limit": threshold.limit,
        "unit": threshold.unit,
        "passed": measured is not None and threshold.passes(measured),
    }


def check_thresholds(summary: dict[str, Any], texts: list[str], *, other_clients: int) -> list[dict[str, Any]]:
    figures = measured_figures(summary, other_clients=other_clients)
    return [check(threshold, figures) for threshold in parse_thresholds(texts)]


def threshold_reason(result: dict[str, Any]) -> str:
    """The verdict's line for a threshold that was not met."""
    return f"threshold {result['expression']} not met: measured {result['measured_text']}"


def threshold_lines(results: list[dict[str, Any]]) -> list[str]:
    """What the terminal shows: one line per threshold, with its measured value."""
    if not results:
        return []
    passed = sum(r["passed"] for r in results)
    return [f"thresholds: {passed} of {len(results)} met"] + [
        f"  {'ok  ' if r['passed'] else 'FAIL'} {r['expression']}: {r['measured_text']}" for r in results
    ]
