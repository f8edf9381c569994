"""What each injected fault cost: the failures it caused and how long until the app recovered.

Recovered means requests succeed again without new failures and the
connections are back within the pools' budget. Times are seconds since the
collector's start (`elapsed_s`), the common axis of the run; each event's
`load_start_epoch` aligns Locust's history with it.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.folder import RunFolder

History = list[tuple[float, int, int]]  # (seconds, cumulative requests, cumulative failures)


def _counts(folder: RunFolder) -> History:
    """(epoch seconds, cumulative requests, cumulative failures) per aggregated history row."""
    rows = []
    for row in folder.locust_history:
        try:
            rows.append((float(row["Timestamp"]), int(row["Total Request Count"]), int(row["Total Failure Count"])))
        except (KeyError, ValueError):
            continue
    return rows


def _failures_between(history: History, start: float, end: float) -> int:
    before = [f for t, _, f in history if t <= start]
    upto = [f for t, _, f in history if t <= end]
    return (upto[-1] if upto else 0) - (before[-1] if before else 0)


def _recovered_at(history: History, at_s: float) -> float | None:
    """First history row after the fault from which requests succeed without new failures."""
    later = [row for row in history if row[0] > at_s]
    for (t0, req0, fail0), (t1, req1, fail1) in zip(later, later[1:]):
        if fail1 == fail0 and req1 > req0:
            return t0
    return None


def _connections_back(connections: list[dict[str, Any]], after_s: float, limit: int) -> float | None:
    for row in connections:
        if row["elapsed_s"] >= after_s and row["total"] <= limit:
            return row["elapsed_s"]
    return None


def fault_figures(folder: RunFolder, *, pools_total: int) -> list[dict[str, Any]]:
    """For each fault of the folder: failures it caused and seconds until the app recovered."""
    counts = _counts(folder) if folder.fault_events else []
    return [_one_fault(event, counts, folder.connections, pools_total) for event in folder.fault_events]


def _one_fault(event: dict[str, Any], counts: History, connections: list[dict[str, Any]], pools_total: int) -> dict[str, Any]:
    history = [(t - event["load_start_epoch"], requests, failures) for t, requests, failures in counts]
    at_load = event["at_s"]
    requests_ok = _recovered_at(history, at_load)
    offset = event["elapsed_s"] - at_load  # load time -> collector time
    conns_ok = _connections_back(connections, event["elapsed_s"], pools_total)
    recovered = None
    if requests_ok is not None and conns_ok is not None:
        recovered = max(requests_ok + offset, conns_ok) - event["elapsed_s"]
    end = requests_ok if requests_ok is not None else float("inf")
    return {
        **{k: event[k] for k in ("kind", "at_s", "elapsed_s", "detail") if k in event},
        "failures_caused": _failures_between(history, at_load - 1, end + 1),
        "recovery_s": round(max(recovered, 0.0), 2) if recovered is not None else None,
    }
