"""pool_stats.csv and workers.csv: what the scraper writes, and how a summary reads it back.

pool_stats.csv has one row per worker per scrape: psycopg_pool's get_stats()
values (gauges, and counters since the pool opened) and its event-loop lag.
The columns keep get_stats()' own names and units (milliseconds), whatever
names and base units /metrics gives them (app/metrics.py METRIC_NAMES). workers.csv has one row per worker pid named
by a connection's application_name per scrape: whether that process was alive.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from app.metrics import LOOP_LAG, METRIC_NAMES, MS_STATS, POOL_GAUGES, POOL_STATS
from loadtests.run_folder import iso_time

LAG_COLUMN = "event_loop_lag_ms"
COLUMNS = ("timestamp", "elapsed_s", "host", "pid", *POOL_STATS, LAG_COLUMN)
WORKER_COLUMNS = ("timestamp", "elapsed_s", "pid", "alive", "connections")
# A sample's name on /metrics -> (its column, the factor from the exported unit to the column's).
_SAMPLES = {
    **{metric: (stat, 1000.0 if stat in MS_STATS else 1.0) for stat, metric in METRIC_NAMES.items()},
    LOOP_LAG: (LAG_COLUMN, 1000.0),
}
_LIVE_ONLY = {LOOP_LAG, *(METRIC_NAMES[name] for name in POOL_GAUGES)}  # gauges: they leave with their worker


def parse_metrics(text: str) -> dict[int, dict[str, float]]:
    """Pool stats and loop lag per live worker pid from a `/metrics` page, in pool_stats.csv's units.

    A dead worker's counters stay on the page (a counter never goes back);
    its gauges do not, so only pids with gauges are kept.
    """
    by_pid: dict[int, dict[str, float]] = {}
    live: set[int] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            column = _SAMPLES.get(sample.name)
            pid = sample.labels.get("pid", "")
            if column is None or not pid.isdigit():
                continue
            name, factor = column
            by_pid.setdefault(int(pid), {})[name] = round(sample.value * factor, 3)
            if sample.name in _LIVE_ONLY:
                live.add(int(pid))
    return {pid: stats for pid, stats in by_pid.items() if pid in live}


def stat_rows(by_pid: dict[int, dict[str, float]], *, timestamp: float, elapsed_s: float, host: int) -> list[list[Any]]:
    stamp = iso_time(timestamp)
    return [
        [stamp, f"{elapsed_s:.3f}", host, pid, *(_number(stats.get(c, 0.0)) for c in (*POOL_STATS, LAG_COLUMN))]
        for pid, stats in sorted(by_pid.items())
    ]


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}"


def read_pool_stats(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a pool_stats.csv, numbers decoded; a torn last line is skipped."""
    return _read_rows(path, ints=("host", "pid"), text=("timestamp",))


def read_workers(path: Path) -> list[dict[str, Any]]:
    return _read_rows(path, ints=("pid", "alive", "connections"), text=("timestamp",))


def _read_rows(path: Path, *, ints: Iterable[str], text: Iterable[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = []
    with open(path, newline="") as f:
        for raw in csv.DictReader(f):
            try:
                row = {k: (v if k in text else int(v) if k in ints else float(v)) for k, v in raw.items()}
            except (TypeError, ValueError):
                continue
            rows.append(row)
    return rows


def named_pids(by_application: dict[str, dict[str, int]], *, app_prefix: str) -> dict[int, int]:
    """Worker pid -> connections, for every application_name `<app_prefix><pid>`."""
    named = {}
    for app, states in by_application.items():
        suffix = app.removeprefix(app_prefix)
        if app.startswith(app_prefix) and suffix.isdigit():
            named[int(suffix)] = sum(states.values())
    return named
