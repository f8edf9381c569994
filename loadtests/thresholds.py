"""Thresholds: pass/fail limits on a run's figures, in a syntax k6 users know.

    p95<300ms   p(99)<=1s   failures<0.1%   failures==0   rps>50
    peak_connections<=30    headroom>=20%   pool_wait_mean<50ms   refused==0

A threshold is METRIC OPERATOR NUMBER[UNIT]. Durations take ms or s (a bare
number is ms, as in k6); ratios and shares take %; counts and rates are bare.
Parsing is pure: `parse_threshold` returns a Threshold or raises ValueError
with one line that says what is wrong and what is accepted.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

DURATION, RATIO, COUNT, RATE = "duration", "ratio", "count", "rate"

# metric -> (kind of number, what it measures). "failures" is a count, or a ratio when given in %;
# "headroom" is a count of free connections, or a share of the usable ones when given in %.
METRICS: dict[str, tuple[str, str]] = {
    "p50": (DURATION, "median request latency (Locust)"),
    "p95": (DURATION, "95th percentile request latency (Locust)"),
    "p99": (DURATION, "99th percentile request latency (Locust)"),
    "failures": (COUNT, "failed requests; in % the share of all requests"),
    "failure_ratio": (RATIO, "failed / total requests, 0 to 1 (or in %)"),
    "rps": (RATE, "requests per second over the run"),
    "peak_connections": (COUNT, "peak connections to the server (exact when the server's log has them, else sampled)"),
    "headroom": (COUNT, "usable connections left free with every pool full; in % the share of the usable"),
    "pool_wait_mean": (DURATION, "mean time a request waited for a pool connection (the pools' own counters)"),
    "refused": (COUNT, "connection attempts the server refused (from its log)"),
}
# Percentiles of the pool wait cannot be had: psycopg_pool counts the total wait, not its distribution.
UNMEASURABLE = {"pool_wait_p50", "pool_wait_p95", "pool_wait_p99", "pool_wait_max"}
_ALIASES = {"connections_refused": "refused", "peak": "peak_connections"}
_PERCENT_METRICS = {"failures": "failure_ratio", "headroom": "headroom_share"}  # what % means for a count metric

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "<": operator.lt, ">": operator.gt,
}
_GRAMMAR = re.compile(
    r"^\s*(?P<metric>[a-z_]+(?:\(\d+\))?[a-z_0-9]*)\s*(?P<op><=|>=|==|<|>)\s*"
    r"(?P<number>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|%)?\s*$"
)
_K6_PERCENTILE = re.compile(r"^p\((\d+)\)$")


@dataclass(frozen=True)
class Threshold:
    """One limit: `measure` (a key of the measured figures) compared with `limit`, in the figure's own unit."""

    expression: str  # as normalised: what the summary, the report and the JUnit file show
    metric: str  # as the user named it (aliases resolved)
    measure: str  # which figure is compared: the metric, or its ratio/share when given in %
    op: str
    limit: float  # in the measure's unit: ms for durations, 0..1 for ratios and shares
    unit: str  # how the limit and the measured value are shown: "ms", "%" or ""

    def passes(self, measured: float) -> bool:
        return OPERATORS[self.op](measured, self.limit)

    def show(self, value: float) -> str:
        """A value of this threshold's measure, in the unit the user wrote."""
        if self.unit == "%":
            return f"{value * 100:.4g}%"
        return f"{value:.4g} ms" if self.unit == "ms" else f"{value:.4g}"


def _metric_name(text: str) -> str:
    k6 = _K6_PERCENTILE.match(text)
    name = f"p{k6.group(1)}" if k6 else text
    return _ALIASES.get(name, name)


def parse_threshold(text: str) -> Threshold:
    """A threshold from its text; ValueError names the problem in one line."""
    match = _GRAMMAR.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not METRIC<LIMIT, e.g. p95<300ms, failures<0.1%, rps>50;"
                         f" operators {', '.join(OPERATORS)}")
    metric = _metric_name(match["metric"])
    if metric in UNMEASURABLE:
        raise ValueError(f"{metric}: not measurable, the pools count the total wait, not its distribution;"
                         " use pool_wait_mean")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    kind = METRICS[metric][0]
    number, unit = float(match["number"]), match["unit"] or ""
    if kind == DURATION:
        if unit == "%":
            raise ValueError(f"{text!r}: {metric} is a duration; give ms or s")
        limit, shown = (number * 1000, "ms") if unit == "s" else (number, "ms")
        measure = metric
    elif unit in ("ms", "s"):
        raise ValueError(f"{text!r}: {metric} is not a duration; give a number" + (" or %" if kind != RATE else ""))
    elif unit == "%":
        if kind == RATE or (kind == COUNT and metric not in _PERCENT_METRICS):
            raise ValueError(f"{text!r}: {metric} is a {kind}, not a share; give a bare number")
        limit, shown, measure = number / 100, "%", _PERCENT_METRICS.get(metric, metric)
    else:
        if kind == RATIO and number > 1:
            raise ValueError(f"{text!r}: {metric} is a ratio from 0 to 1; write {number:g}% for a percentage")
        limit, shown, measure = number, "", metric
    expression = f"{metric}{match['op']}{match['number']}{unit}"
    return Threshold(expression=expression, metric=metric, measure=measure, op=match["op"], limit=limit, unit=shown)


def parse_thresholds(texts: tuple[str, ...] | list[str]) -> list[Threshold]:
    return [parse_threshold(text) for text in texts]
