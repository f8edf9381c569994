"""A run folder's data as time series on one axis: seconds since the load started.

Every series is a pure function of a `RunFolder`, read through it, so the run
report and the comparison draw the same rows the summary counts. Missing
files give empty series: an interrupted run still has a report.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.summary import summarize
from loadtests.failure_classes import OTHER
from loadtests.run_folder import epoch
from loadtests.shapes import BURST
from loadtests.sources.collector import STATE_GROUPS


@dataclass
class Connections:
    """connections.csv by state, by worker and by worker and state."""

    t: list[float] = field(default_factory=list)
    total: list[int] = field(default_factory=list)
    states: dict[str, list[int]] = field(default_factory=dict)
    workers: dict[str, list[int]] = field(default_factory=dict)
    worker_states: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    oldest_backend_s: list[float] = field(default_factory=list)
    oldest_idle_s: list[float] = field(default_factory=list)


@dataclass
class Load:
    """Locust's aggregated history: users and current latency percentiles at `t`; throughput at `rate_t`.

    Each rate covers the second (or the span between two history rows) that
    ends at its `rate_t`. The users change at their `users_t`.
    """

    t: list[float] = field(default_factory=list)
    users_t: list[float] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    rate_t: list[float] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    failures_per_s: list[float] = field(default_factory=list)
    percentiles: dict[str, list[float | None]] = field(default_factory=dict)


def axis_origin(folder: RunFolder) -> float:
    """Epoch seconds of t = 0 on every chart: the load's start, else the run's (the load never started)."""
    if folder.load_start is not None:
        return folder.load_start
    started = folder.manifest.get("started_at")
    return epoch(started) if started else 0.0


def _worker_label(app_name: str, app_prefix: str) -> str:
    # An app of your own has no prefix: each application_name is a client of its own.
    return "worker " + app_name.removeprefix(app_prefix) if app_prefix else app_name or "(no application_name)"


def _state_counts(counts: dict[str, int]) -> dict[str, int]:
    return {label: sum(counts.get(c, 0) for c in columns) for label, columns in STATE_GROUPS.items()}


def connections(folder: RunFolder, *, t0: float) -> Connections:
    """connections.csv on the load's time axis; workers are the app's application_names."""
    rows, app_prefix = folder.connections, folder.app_prefix
    apps = sorted({a for r in rows for a in r["by_application"] if a.startswith(app_prefix)}, key=_natural)
    out = Connections()
    out.states = {label: [] for label in STATE_GROUPS}
    out.workers = {_worker_label(a, app_prefix): [] for a in apps}
    out.worker_states = {_worker_label(a, app_prefix): {s: [] for s in STATE_GROUPS} for a in apps}
    for row in rows:
        out.t.append(round(epoch(row["timestamp"]) - t0, 3))
        out.total.append(row["total"])
        for label, count in _state_counts(row).items():
            out.states[label].append(count)
        for app in apps:
            per_state = _state_counts(row["by_application"].get(app, {}))
            name = _worker_label(app, app_prefix)
            out.workers[name].append(sum(per_state.values()))
            for label, count in per_state.items():
                out.worker_states[name][label].append(count)
        out.oldest_backend_s.append(row["oldest_backend_s"])
        out.oldest_idle_s.append(row["oldest_idle_s"])
    return out


def _natural(name: str) -> tuple[int, str]:
    tail = name.rsplit(":", 1)[-1]
    return (int(tail), name) if tail.isdigit() else (0, name)


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "", "N/A") else None
    except ValueError:
        return None


def load(folder: RunFolder, *, t0: float) -> Load:
    """Aggregated rows of Locust's history: users, per-second rates, recent percentiles.

    Rates are Locust's own counts per second of the requests' end when the
    locustfile recorded them; else the change of the cumulative counts between
    history rows, which is up to a second late (a row is stamped with the
    whole second in which it was written). Locust's own Requests/s is a 10 s
    rolling mean, which would smear a burst's edges.
    """
    out = Load(percentiles={"p50": [], "p95": [], "p99": []})
    previous: tuple[float, float, float] | None = None
    for row in folder.locust_history:
        now = (float(row["Timestamp"]), _number(row.get("Total Request Count")) or 0.0,
               _number(row.get("Total Failure Count")) or 0.0)
        span = now[0] - previous[0] if previous else 0.0
        out.t.append(round(now[0] - t0, 3))
        out.users.append(int(_number(row.get("User Count")) or 0))
        out.rps.append(round((now[1] - previous[1]) / span, 2) if previous and span > 0 else 0.0)
        out.failures_per_s.append(round((now[2] - previous[2]) / span, 2) if previous and span > 0 else 0.0)
        for name, column in (("p50", "50%"), ("p95", "95%"), ("p99", "99%")):
            out.percentiles[name].append(_number(row.get(column)))
        previous = now
    out.rate_t, out.users_t = list(out.t), list(out.t)
    changes = _user_changes(folder.user_changes)
    if changes:
        # The moments the locustfile saw the users change; the history's rows are stamped with the
        # whole second they were written in, up to a second before.
        out.users_t = [round(at - t0, 3) for at, _ in changes]
        out.users = [users for _, users in changes]
    by_second = _per_second(folder.requests_by_second)
    if by_second:
        # From nothing before the first second to nothing after the last: the line ends where the load did.
        first, last = by_second[0][0], by_second[-1][0]
        by_second = [(first - 1, 0, 0), *by_second, (last + 1, 0, 0)]
        out.rate_t = [round(second + 1 - t0, 3) for second, _, _ in by_second]
        out.rps = [float(requests) for _, requests, _ in by_second]
        out.failures_per_s = [float(failures) for _, _, failures in by_second]
    return out


def _user_changes(rows: list[dict[str, str]]) -> list[tuple[float, int]]:
    changes = [(_number(row.get("timestamp")), _number(row.get("users"))) for row in rows]
    return [(at, int(users)) for at, users in changes if at is not None and users is not None]


def _per_second(rows: list[dict[str, str]]) -> list[tuple[int, int, int]]:
    """(second, requests, failures) for every second from the first to the last counted, gaps as zeros."""
    counted = {}
    for row in rows:
        second, requests, failures = (_number(row.get(c)) for c in ("second", "requests", "failures"))
        if second is not None and requests is not None:
            counted[int(second)] = (int(requests), int(failures or 0))
    if not counted:
        return []
    return [(s, *counted.get(s, (0, 0))) for s in range(min(counted), max(counted) + 1)]


def failures_by_class(folder: RunFolder, *, t0: float) -> dict[str, tuple[list[float], list[int]]]:
    """Failures per second of each error class, as the locustfile counted them.

    Each count is of the second before its time (the locustfile counts once a
    second and stamps the count with its moment), as each requests/s is.
    """
    counts: dict[str, dict[float, int]] = defaultdict(dict)
    for row in folder.failures_by_second:
        second = _number(row.get("timestamp"))
        count = _number(row.get("count"))
        if second is None or count is None:
            continue  # a torn last line
        seconds = counts[row.get("error_class") or OTHER]
        seconds[round(second - t0, 3)] = seconds.get(round(second - t0, 3), 0) + int(count)
    return {name: (sorted(s), [s[t] for t in sorted(s)]) for name, s in sorted(counts.items())}


def burst_phases(manifest: dict[str, Any]) -> list[tuple[float, float]]:
    """(start, end) seconds of each burst of the run's shape."""
    return [(p["start_s"], p["end_s"]) for p in manifest.get("shape", []) if p.get("phase") == BURST]


def fault_marks(folder: RunFolder, *, t0: float) -> list[tuple[float, str]]:
    """(seconds, label) of each injected fault, when the run had any."""
    marks = []
    for event in folder.fault_events:
        try:
            marks.append((round(event["load_start_epoch"] + event["at_s"] - t0, 3), str(event["kind"])))
        except (KeyError, TypeError):
            continue
    return marks


def pool_stats(folder: RunFolder, *, t0: float) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """pool_stats.csv, when the run has one: {figure: {worker: (t, values)}}.

    Gauges are drawn as scraped; the cumulative wait is turned into the mean
    wait of the requests served between two scrapes.
    """
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    previous: dict[str, dict[str, Any]] = {}
    rows = folder.pool_stats
    overflowing = any(row.get("overflow", 0) > 0 for row in rows)  # a SQLAlchemy engine opened overflow
    for row in rows:
        worker = f"worker {row['pid']}"  # as the connection charts name it: one worker, one colour
        t = round(epoch(row["timestamp"]) - t0, 3)
        before = previous.get(worker)
        served = row["requests_num"] - before["requests_num"] if before else 0
        waited = row["requests_wait_ms"] - before["requests_wait_ms"] if before else 0
        figures = {
            "requests waiting": row["requests_waiting"],
            "mean pool wait per request (ms)": round(waited / served, 2) if served > 0 else 0.0,
            "event-loop lag (ms)": row.get("event_loop_lag_ms", 0.0),
            "connections in use": row["pool_size"] - row["pool_available"],
        }
        if overflowing:
            figures["overflow connections open"] = row.get("overflow", 0.0)
        for name, value in figures.items():
            ts, values = out.setdefault(name, {}).setdefault(worker, ([], []))
            ts.append(t)
            values.append(value)
        previous[worker] = row
    return out


def pool_sizes(folder: RunFolder, *, t0: float) -> dict[str, tuple[list[float], list[int]]]:
    """Each worker's pool size (its connections open) as scraped, by worker label.

    Behind PgBouncer these are the worker's connections to PgBouncer, its clients: the only per-worker
    count there is, the server's connections being PgBouncer's.
    """
    out: dict[str, tuple[list[float], list[int]]] = {}
    for row in folder.pool_stats:
        ts, values = out.setdefault(f"worker {row['pid']}", ([], []))
        ts.append(round(epoch(row["timestamp"]) - t0, 3))
        values.append(int(row["pool_size"]))
    return out


@dataclass
class RunSeries:
    """A finished run's records and its series on the load's axis, read once from its folder."""

    folder: RunFolder
    summary: dict[str, Any]
    t0: float
    connections: Connections
    load: Load

    @property
    def run_dir(self) -> Path:
        return self.folder.path

    @property
    def manifest(self) -> dict[str, Any]:
        return self.folder.manifest

    @property
    def run_id(self) -> str:
        return self.folder.run_id


def read_series(run: RunFolder | Path) -> RunSeries:
    """The run's stored summary (computed from the folder when it has none) and its series."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    summary = folder.stored_summary if folder.stored_summary is not None else summarize(folder)
    t0 = axis_origin(folder)
    return RunSeries(folder, summary, t0, connections(folder, t0=t0), load(folder, t0=t0))
