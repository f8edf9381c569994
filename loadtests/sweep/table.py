"""A sweep's table and recommendation: a pure function of its folder (sweep.json + each run's summary.json)."""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from loadtests.analysis.summary import FAIL, PASS, exact_peak, mean_pool_wait_ms
from loadtests.budget import ServerLimits
from loadtests.run_folder import SCHEMA_VERSION, SUMMARY, read_json
from loadtests.sweep.recommend import Criteria, recommend

SWEEP_JSON = "sweep.json"
SWEEP_SUMMARY = "sweep_summary.json"
SWEEP_CSV = "sweep.csv"

CSV_COLUMNS = (
    "pool_kind", "workers", "max_size", "hosts", "status", "runs", "rps", "rps_spread_pct", "p95_ms",
    "p95_spread_ms", "p99_ms", "failures", "failure_ratio", "failures_by_class", "pool_wait_mean_ms",
    "peak_sampled", "peak_exact", "connections", "budget_total", "usable", "fits", "recommended", "run_dirs",
    "rps_overall", "peak_per_worker", "pgbouncer_pool_size", "server_budget", "peak_server",
)


def cell_key(*, pool_kind: str, workers: int, max_size: int, pgbouncer_pool_size: int | None = None) -> str:
    pooler = "" if pgbouncer_pool_size is None else f"-p{pgbouncer_pool_size}"
    return f"{pool_kind}-w{workers}-m{max_size}{pooler}"


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 2) if values else None


def _spread(values: list[float], *, relative: bool) -> float | None:
    """Max minus min across repeats (as % of the median when relative); None for a single run."""
    if len(values) < 2:
        return None
    spread = max(values) - min(values)
    middle = statistics.median(values)
    return round(spread / middle * 100, 1) if relative and middle else round(spread, 2)


def _complete(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [s for s in summaries if s.get("verdict") in (PASS, FAIL) and s.get("complete", True)]


def _figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over repeats for the rates and latencies; the worst for peaks; sums for failures."""
    # Ranked on the bursts: a run's totals are mostly its quiet phases (loadtests/analysis/bursts.py).
    rps = [_in_bursts(s, "rps") for s in runs]
    p95 = [_in_bursts(s, "p95_ms") for s in runs]
    by_class: Counter[str] = Counter()
    for s in runs:
        by_class.update(s.get("errors_by_class", {}))
    exact = [p for p in map(exact_peak, runs) if p is not None]
    waits = [w for w in map(mean_pool_wait_ms, runs) if w is not None]
    return {
        "rps": _median(rps),
        "rps_spread_pct": _spread(rps, relative=True),
        "p95_ms": _median(p95),
        "p95_spread_ms": _spread(p95, relative=False),
        "p99_ms": _median([s["requests"]["p99_ms"] for s in runs]),
        "failures": sum(s["requests"]["failures"] for s in runs),
        "failure_ratio": _median([s["requests"]["failure_ratio"] for s in runs]),
        "failures_by_class": dict(sorted(by_class.items())),
        "pool_wait_mean_ms": _median(waits),
        "peak_sampled": max((s["peak_connections"] for s in runs), default=None),
        "peak_exact": max(exact, default=None),
        "peak_per_worker": max((p for p in map(peak_per_worker, runs) if p is not None), default=None),
        "rps_overall": _median([s["requests"]["rps"] for s in runs]),
        "passes": sum(1 for s in runs if s["verdict"] == PASS),
        "advice": [f"{f['severity']}: {f['text']}" for f in runs[-1].get("advice", [])],
    }


def _in_bursts(summary: dict[str, Any], key: str) -> float:
    """A figure measured in the bursts; the whole run's for a summary without burst figures."""
    bursts = summary.get("bursts") or {}
    value = bursts.get(key) if bursts.get("available") else None
    return summary["requests"][key] if value is None else value


def peak_per_worker(summary: dict[str, Any]) -> int | None:
    """The most connections one worker's pool held: the pool's own size, else the sampled peak per worker."""
    pool = summary.get("pool") or {}
    sizes = [w.get("pool_size_max") for w in pool.get("per_worker", {}).values()] if pool.get("available") else []
    sizes = [size for size in sizes if size is not None]
    if sizes:
        return max(sizes)
    sampled = summary.get("connections", {}).get("peak_by_worker", {})
    return max(sampled.values(), default=None)


def cell_row(cell: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """One table row: the cell's settings and budget, and its figures over the runs that completed."""
    runs = _complete(summaries)
    status = "refused" if cell.get("refused") else "ran" if runs else "not run" if not summaries else "incomplete"
    return {
        "key": cell["key"],
        "pool_kind": cell["pool_kind"],
        "workers": cell["workers"],
        "max_size": cell["max_size"],
        "hosts": cell["hosts"],
        "status": status,
        "refused": cell.get("refused"),
        "runs": len(runs),
        "connections": cell["budget"]["pools_total"],
        "budget_total": cell["budget"]["total"],
        "fits": cell["fits"],
        "run_dirs": [r["run_dir"] for r in cell.get("runs", [])],
        **_pooler_figures(cell, runs),
        **(_figures(runs) if runs else {"passes": 0}),
    }


def _pooler_figures(cell: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Behind PgBouncer: its default_pool_size, the server connections its pools may open, and the most seen."""
    pooler = cell.get("pgbouncer")
    if not pooler:
        return {}
    seen = [s["pgbouncer"]["peak_server_connections"] for s in runs if s.get("pgbouncer")]
    return {
        "pgbouncer_pool_size": pooler["default_pool_size"],
        "server_connections": pooler["server_pools"],  # what PgBouncer may open: the cell's size on the server
        "server_budget": pooler["server_total"],
        "peak_server": max(seen, default=None),
        "max_client_conn": pooler["max_client_conn"],
        "admin_clients": pooler["client_total"] - cell["budget"]["pools_total"],  # PgBouncer's own admin clients
    }


def _run_summaries(sweep_dir: Path, cell: dict[str, Any]) -> list[dict[str, Any]]:
    paths = [sweep_dir / run["run_dir"] / SUMMARY for run in cell.get("runs", [])]
    return [read_json(path) for path in paths if path.exists()]


def cell_figures(sweep_dir: Path, cell: dict[str, Any]) -> dict[str, Any]:
    """A cell's row from the runs it has so far (sweep.json's cell record)."""
    return cell_row(cell, _run_summaries(sweep_dir, cell))


def summarize_sweep(sweep_dir: Path) -> dict[str, Any]:
    """Everything sweep_summary.json holds, from the sweep folder alone."""
    plan = read_json(sweep_dir / SWEEP_JSON)
    names = ("max_connections", "superuser_reserved_connections", "reserved_connections")
    limits = ServerLimits(**{name: plan["limits"][name] for name in names})
    criteria = Criteria(**plan["criteria"])
    rows = [cell_row(cell, _run_summaries(sweep_dir, cell)) for cell in plan["cells"]]
    choice = recommend(rows, criteria=criteria, limits=limits, other_clients=plan["other_clients"],
                       axes=plan.get("axes"), repeat=plan["repeat"])
    for row in rows:
        row["usable"] = limits.usable
        row["recommended"] = row["key"] == choice["cell"]
    return {
        "schema_version": SCHEMA_VERSION,
        "sweep_id": plan["sweep_id"],
        "status": plan["status"],
        "repeat": plan["repeat"],
        "criteria": criteria.as_dict(),
        "limits": limits.as_dict(),
        "rows": rows,
        "recommendation": choice,
        # Every cell's run checked these (its verdict fails on a threshold not met); how its pages load plotly.js.
        "thresholds": list(plan.get("settings", {}).get("thresholds", [])),
        "plotlyjs": plan.get("settings", {}).get("plotlyjs", "inline"),
    }


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict):
        return ";".join(f"{k}:{v}" for k, v in value.items())
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else value


def write_csv(path: Path, summary: dict[str, Any]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in summary["rows"]:
            writer.writerow({name: _csv_value(row.get(name)) for name in CSV_COLUMNS})


def _figure(value: Any, *, unit: str = "", spread: Any = None, spread_unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:g}{unit}"
    return f"{text} (spread {spread:g}{spread_unit})" if spread else text


def _failures_text(row: dict[str, Any]) -> str:
    if not row.get("failures"):
        return "0" if row["status"] == "ran" else "-"
    return f"{row['failures']} (" + ", ".join(f"{k} {v}" for k, v in row["failures_by_class"].items()) + ")"


def _note(row: dict[str, Any]) -> str:
    if row["recommended"]:
        return "RECOMMENDED"
    return "refused: over budget" if row["status"] == "refused" else "" if row["status"] == "ran" else row["status"]


def _behind_pgbouncer(summary: dict[str, Any]) -> bool:
    return any("pgbouncer_pool_size" in row for row in summary["rows"])


def _server_side(row: dict[str, Any]) -> list[str]:
    """PgBouncer's default_pool_size and its server connections: the most seen / the server-side budget."""
    return [str(row["pgbouncer_pool_size"]), f"{_figure(row.get('peak_server'))} / {row['server_budget']}"]


def table_rows(summary: dict[str, Any]) -> list[list[str]]:
    """The terminal table's cells as text, one list per sweep cell."""
    pooled = _behind_pgbouncer(summary)
    return [
        [
            row["pool_kind"], str(row["workers"]), str(row["max_size"]), str(row["runs"]),
            _figure(row.get("rps"), spread=row.get("rps_spread_pct"), spread_unit=" %"),
            _figure(row.get("p95_ms"), unit=" ms", spread=row.get("p95_spread_ms"), spread_unit=" ms"),
            _figure(row.get("p99_ms"), unit=" ms"),
            _failures_text(row),
            _figure(row.get("pool_wait_mean_ms"), unit=" ms"),
            f"{_figure(row.get('peak_sampled'))} / {_figure(row.get('peak_exact'))}",
            _figure(row.get("peak_per_worker")),
            *(_server_side(row) if pooled else []),
            f"{row['connections']} / {row['budget_total']}",
            "yes" if row["fits"] else "NO",
            _note(row),
        ]
        for row in summary["rows"]
    ]


TABLE_HEADERS = (
    "pool", "workers", "max_size", "runs", "burst req/s", "burst p95", "p99", "failures", "pool wait",
    "peak sampled / exact", "1 pool max", "conns / budget", "fits", "",
)
# Behind PgBouncer, before "conns / budget" (then the app's connections to PgBouncer)
POOLER_HEADERS = ("pgb pool", "server / budget")


def table_text(summary: dict[str, Any], *, width: int = 190) -> str:
    """The table as the terminal shows it, rendered by rich."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    headers = TABLE_HEADERS
    if _behind_pgbouncer(summary):
        at = TABLE_HEADERS.index("conns / budget")
        headers = (*TABLE_HEADERS[:at], *POOLER_HEADERS, *TABLE_HEADERS[at:])
    table = Table(*headers, box=box.SIMPLE_HEAD, title=f"sweep {summary['sweep_id']}", title_justify="left")
    for cells in table_rows(summary):
        table.add_row(*cells)
    console = Console(width=width, force_terminal=False, no_color=True, highlight=False)
    with console.capture() as captured:
        console.print(table)
    return "\n".join(line.rstrip() for line in captured.get().splitlines()).strip("\n")
