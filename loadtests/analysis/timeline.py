"""A run folder's data as time series on one axis: seconds since the load started.

Every reader here is a pure function of the files of a run folder, so the
run report and the comparison draw the same numbers the summary counts.
Missing files give empty series: an interrupted run still has a report.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from loadtests.sources.collector import CONNECTIONS_CSV, read_connections
from loadtests.sources.pool_stats import POOL_STATS_CSV, read_pool_stats
from loadtests.run_folder import LOCUST_PREFIX, MANIFEST, SUMMARY, read_json
from loadtests.shapes import BURST

LOAD_JSON = f"{LOCUST_PREFIX}_load.json"
FAILURES_BY_SECOND_CSV = f"{LOCUST_PREFIX}_failures_by_second.csv"
STATS_HISTORY_CSV = f"{LOCUST_PREFIX}_stats_history.csv"
# Drawn in this order, bottom of the stack first; the aborted state is rare and joins its parent.
STATE_COLUMNS = {
    "active": ("active",),
    "idle in transaction": ("idle_in_transaction", "idle_in_transaction_aborted"),
    "idle": ("idle",),
    "other": ("other",),
}


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
    """Locust's aggregated history: users, throughput, current latency percentiles."""

    t: list[float] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    failures_per_s: list[float] = field(default_factory=list)
    percentiles: dict[str, list[float | None]] = field(default_factory=dict)


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def load_start(run_dir: Path) -> float:
    """Epoch seconds when Locust started the shape: t = 0 of every series.

    Precise when the locustfile recorded it; else Locust's first history row
    (whole seconds), else when the runner started Locust.
    """
    path = run_dir / LOAD_JSON
    if path.exists():
        return float(read_json(path)["started_at_epoch"])
    first = _first_history_timestamp(run_dir)
    if first is not None:
        return first
    manifest = read_json(run_dir / MANIFEST)
    for key in ("load_started_at", "started_at"):
        if manifest.get(key):
            return epoch(manifest[key])
    return 0.0


def _first_history_timestamp(run_dir: Path) -> float | None:
    for row in _history_rows(run_dir):
        return float(row["Timestamp"])
    return None


def _history_rows(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / STATS_HISTORY_CSV
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [row for row in csv.DictReader(f) if row.get("Name") == "Aggregated" and row.get("Timestamp")]


def _worker_label(app_name: str, app_prefix: str) -> str:
    # An app of your own has no prefix: each application_name is a client of its own.
    return "worker " + app_name.removeprefix(app_prefix) if app_prefix else app_name or "(no application_name)"


def _state_counts(counts: dict[str, int]) -> dict[str, int]:
    return {label: sum(counts.get(c, 0) for c in columns) for label, columns in STATE_COLUMNS.items()}


def connections(run_dir: Path, *, t0: float, app_prefix: str) -> Connections:
    """connections.csv on the load's time axis; workers are the app's application_names."""
    path = run_dir / CONNECTIONS_CSV
    rows = read_connections(path) if path.exists() else []
    apps = sorted({a for r in rows for a in r["by_application"] if a.startswith(app_prefix)}, key=_natural)
    out = Connections()
    out.states = {label: [] for label in STATE_COLUMNS}
    out.workers = {_worker_label(a, app_prefix): [] for a in apps}
    out.worker_states = {_worker_label(a, app_prefix): {s: [] for s in STATE_COLUMNS} for a in apps}
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


def load(run_dir: Path, *, t0: float) -> Load:
    """Aggregated rows of Locust's history: users, per-second rates, recent percentiles.

    Rates come from the change of the cumulative counts between rows: Locust's
    own Requests/s is a 10 s rolling mean, which would smear a burst's edges.
    """
    out = Load(percentiles={"p50": [], "p95": [], "p99": []})
    previous: tuple[float, float, float] | None = None
    for row in _history_rows(run_dir):
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
    return out


def failures_by_class(run_dir: Path, *, t0: float) -> dict[str, tuple[list[float], list[int]]]:
    """Failures per second of each error class, as the locustfile counted them."""
    path = run_dir / FAILURES_BY_SECOND_CSV
    if not path.exists():
        return {}
    counts: dict[str, dict[float, int]] = defaultdict(dict)
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            second = _number(row.get("timestamp"))
            count = _number(row.get("count"))
            if second is None or count is None:
                continue  # a torn last line
            seconds = counts[row.get("error_class") or "other"]
            seconds[round(second - t0, 3)] = seconds.get(round(second - t0, 3), 0) + int(count)
    return {name: (sorted(s), [s[t] for t in sorted(s)]) for name, s in sorted(counts.items())}


def burst_phases(manifest: dict[str, Any]) -> list[tuple[float, float]]:
    """(start, end) seconds of each burst of the run's shape."""
    return [(p["start_s"], p["end_s"]) for p in manifest.get("shape", []) if p.get("phase") == BURST]


def fault_marks(run_dir: Path, *, t0: float) -> list[tuple[float, str]]:
    """(seconds, label) of each injected fault, when the run had any."""
    path = run_dir / "faults.jsonl"
    if not path.exists():
        return []
    marks = []
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
            marks.append((round(event["load_start_epoch"] + event["at_s"] - t0, 3), str(event["kind"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return marks


def _busy(series: Connections, i: int) -> int:
    return series.total[i] - series.states["idle"][i]


def drain_after_bursts(series: Connections, bursts: list[tuple[float, float]]) -> list[dict[str, Any]]:
    """For each burst: seconds after its end until busy connections and all connections
    are back to the level of the quiet time before it (None: not within the next quiet phase).

    Busy means not idle: connections a request holds. The pools keep idle
    connections until max_idle, so the total often stays up.
    """
    drains = []
    for n, (start, end) in enumerate(bursts):
        until = bursts[n + 1][0] if n + 1 < len(bursts) else float("inf")
        before = [i for i, t in enumerate(series.t) if start - 3.0 <= t < start]
        after = [i for i, t in enumerate(series.t) if end <= t < until]
        busy_level = max((_busy(series, i) for i in before), default=0)
        total_level = max((series.total[i] for i in before), default=0)
        drains.append({
            "burst_end_s": end,
            "busy_drain_s": _first_at_or_below(series, after, lambda i: _busy(series, i), busy_level, end),
            "total_drain_s": _first_at_or_below(series, after, lambda i: series.total[i], total_level, end),
            "peak_in_burst": max((series.total[i] for i, t in enumerate(series.t) if start <= t < end), default=0),
        })
    return drains


def _first_at_or_below(series: Connections, indices: list[int], value: Any, level: int, since: float) -> float | None:
    for i in indices:
        if value(i) <= level:
            return round(max(series.t[i] - since, 0.0), 2)
    return None


def pool_stats(run_dir: Path, *, t0: float) -> dict[str, dict[str, tuple[list[float], list[float]]]]:
    """pool_stats.csv, when the run has one: {figure: {worker: (t, values)}}.

    Gauges are drawn as scraped; the cumulative wait is turned into the mean
    wait of the requests served between two scrapes.
    """
    out: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    previous: dict[str, dict[str, Any]] = {}
    rows = read_pool_stats(run_dir / POOL_STATS_CSV)
    overflowing = any(row.get("overflow", 0) > 0 for row in rows)  # a SQLAlchemy engine opened overflow
    for row in rows:
        worker = f"h{row['host']} pid {row['pid']}"
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


@dataclass
class Run:
    """A finished run folder read once: its records and its series on the load's axis."""

    run_dir: Path
    manifest: dict[str, Any]
    summary: dict[str, Any]
    t0: float
    connections: Connections
    load: Load

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.run_dir.name))


def read_run(run_dir: Path) -> Run:
    """The run's stored summary (computed from the folder when it has none) and its series."""
    from loadtests.analysis.summary import summarize  # here: the summary's own readers import the live view, which imports this

    manifest = read_json(run_dir / MANIFEST)
    summary = read_json(run_dir / SUMMARY) if (run_dir / SUMMARY).exists() else summarize(run_dir)
    t0 = load_start(run_dir)
    app_name = manifest.get("app_name", "poolcheck-app")
    app_prefix = f"{app_name}:" if app_name else ""
    return Run(run_dir, manifest, summary, t0, connections(run_dir, t0=t0, app_prefix=app_prefix), load(run_dir, t0=t0))
