"""Which of the compared runs is better, and why: from their summaries and their advice.

A run that passes is better than one that fails; between runs of the same
verdict, the one whose advice asks for fewer changes (failures first, then
warnings); then the higher throughput in the bursts, then the lower p95.
The lines say which of these decided, with the figures.
"""

from __future__ import annotations

from typing import Any

_VERDICT_RANK = {"pass": 0, "fail": 1, "incomplete": 2, "interrupted": 2}


def _count(summary: dict[str, Any], severity: str) -> int:
    return sum(1 for f in summary.get("advice", []) if f.get("severity") == severity)


def _burst(summary: dict[str, Any], key: str) -> float:
    bursts = summary.get("bursts") or {}
    value = bursts.get(key) if bursts.get("available") else None
    return float(summary["requests"][key] if value is None else value)


def _rank(summary: dict[str, Any]) -> tuple[float, ...]:
    return (
        _VERDICT_RANK.get(summary["verdict"], 3),
        _count(summary, "failure"),
        _count(summary, "warning"),
        -_burst(summary, "rps"),
        _burst(summary, "p95_ms"),
    )


def _why(best: dict[str, Any], other: dict[str, Any], other_id: str) -> str:
    """The first criterion on which `best` beats `other`, with both figures."""
    if best["verdict"] != other["verdict"]:
        return f"it passes where {other_id} {other['verdict']}s" if best["verdict"] == "pass" else (
            f"its verdict {best['verdict']} ranks above {other_id}'s {other['verdict']}")
    for severity in ("failure", "warning"):
        mine, theirs = _count(best, severity), _count(other, severity)
        if mine != theirs:
            return f"its advice has {mine} {severity} finding(s) to {other_id}'s {theirs}"
    rps, their_rps = _burst(best, "rps"), _burst(other, "rps")
    if rps != their_rps:
        change = f" ({(rps - their_rps) / their_rps:+.1%})" if their_rps else ""
        return f"{rps:g} req/s in the bursts to {other_id}'s {their_rps:g}{change}"
    p95, their_p95 = _burst(best, "p95_ms"), _burst(other, "p95_ms")
    if p95 != their_p95:
        return f"p95 {p95:g} ms in the bursts to {other_id}'s {their_p95:g} ms"
    return f"no figure tells it from {other_id}"


def better_lines(runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """The verdict of a comparison: the better run and why, then what each run's advice asks to change."""
    ranked = sorted(runs, key=lambda run: _rank(run[1]))
    best_id, best = ranked[0]
    if all(_rank(summary) == _rank(best) for _, summary in runs):
        lines = ["better: none of the runs; they rank the same on verdict, advice, burst throughput and p95"]
    else:
        reasons = "; ".join(_why(best, summary, run_id) for run_id, summary in ranked[1:])
        lines = [f"better: {best_id}: {reasons}"]
    for run_id, summary in runs:
        asks = [f for f in summary.get("advice", []) if f.get("severity") in ("failure", "warning")]
        if asks:
            lines += [f"  {run_id} advice: {f['severity']}: {f['text']}" for f in asks]
        else:
            lines.append(f"  {run_id} advice: nothing to change")
    return lines
