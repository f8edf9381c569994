"""report.html: one self-contained page per run, a pure function of its folder.

    verdict and reasons -> budget arithmetic -> timeline (connections vs limits, load)
    -> latency -> failures by class -> pool figures -> connection age and drain
    -> requests -> other summary figures -> configuration and versions

No generation time, no absolute path and a fixed order: the page regenerated
from a copy of the folder is byte for byte the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.sections import accounting_lines
from loadtests.analysis.summary import burst_drains, exact_peak
from loadtests.analysis.timeline import RunSeries, burst_phases, failures_by_class, fault_marks, pool_stats, read_series
from loadtests.analysis.known_pools import known_pools
from loadtests.budget import budget_sentence
from loadtests.present import charts
from loadtests.present.pages import display, flatten, render
from loadtests.run_folder import REPORT_HTML, write_atomically

logger = logging.getLogger("poolcheck.report")
# Summary keys the page shows in its own sections; any other key gets a table of its own.
_SHOWN_KEYS = {
    "run_id", "verdict", "reasons", "complete", "budget", "server", "peak_connections", "peak_connections_at_s",
    "requests", "errors_by_class", "sample_interval_s", "started_at", "ended_at", "advice", "warnings",
}
_SECTION_TITLES = {"connections": "Connection samples", "pool": "Pool", "exact": "Exact connection counts",
                   "lifecycle": "Connection lifecycle", "faults": "Faults",
                   "proxy": "Cloud-proxy emulator (cuts, hung requests)"}
_HIDDEN_SETTINGS = {"results_dir"}  # where the folder was written says nothing about the result


@dataclass(frozen=True)
class Chart:
    name: str
    html: str


def write_run_report(run: RunFolder | Path) -> Path:
    """Write report.html into the run folder from the folder's data; return its path."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    return write_atomically(folder.file(REPORT_HTML), render_report(folder))


def render_report(run: RunFolder | Path) -> str:
    series = read_series(run)
    return render("report.html.j2", **_context(series))


def limit_lines(summary: dict[str, Any]) -> list[charts.LimitLine]:
    server = summary["server"]
    return [
        charts.LimitLine("budget", summary["budget"]["total"], "#1f77b4"),
        charts.LimitLine("usable", server["usable"], "#ef6c00"),
        charts.LimitLine("max_connections", server["max_connections"], "#c62828", dash="solid"),
    ]


def drain_rows(run: RunSeries) -> list[dict[str, Any]]:
    """The summary's drain after each burst, with the burst's end on the charts' axis (seconds of the load)."""
    ends = [end for _, end in burst_phases(run.manifest)]
    return [{**burst, "burst_end_load_s": end} for end, burst in zip(ends, burst_drains(run.summary))]


def _charts(run: RunSeries, drains: list[dict[str, Any]]) -> list[Chart]:
    marks = charts.Marks(tuple(burst_phases(run.manifest)), tuple(fault_marks(run.folder, t0=run.t0)))
    figures = [
        ("timeline", charts.timeline(run.connections, run.load, limits=limit_lines(run.summary), marks=marks)),
        ("latency", charts.latency(run.load, marks=marks)),
        ("failures", charts.failures(failures_by_class(run.folder, t0=run.t0), run.load, marks=marks)),
    ]
    pool = pool_stats(run.folder, t0=run.t0)
    if pool:
        figures.append(("pool", charts.pool(pool, marks=marks)))
    known = known_pools(run.manifest)
    figures.append(("lifecycle", charts.lifecycle(run.connections, drains, max_lifetime=known.max_lifetime,
                                                  max_idle=known.drain_idle, marks=marks)))
    return [Chart(name, charts.to_html(figure, div_id=f"plot-{name}", include_plotlyjs=n == 0))
            for n, (name, figure) in enumerate(figures)]


def budget_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The arithmetic as rows: what may be opened, what the server allows, what was seen."""
    b, s = summary["budget"], summary["server"]
    pools = f"{b['hosts']} hosts x {b['workers']} workers x {b['pools_per_worker']} pools x max_size {b['max_size']}"
    if b.get("pool_sizes"):  # pools of different sizes: their sum per worker
        pools = f"{b['hosts']} hosts x {b['workers']} workers x pools of {'+'.join(map(str, b['pool_sizes']))}"
    if b.get("max_overflow") is not None:  # SQLAlchemy engines
        pools += f" (pool_size {b['max_size'] - b['max_overflow']} + max_overflow {b['max_overflow']})"
    rows = [
        ("pools may hold", str(b["pools_total"]), pools),
        ("+ extra clients", str(b["extra_clients"]), "the collector and --other-clients"),
        ("= budget", str(b["total"]), ""),
        ("usable", str(s["usable"]), f"max_connections {s['max_connections']} - superuser_reserved "
                                     f"{s['superuser_reserved_connections']} - reserved {s.get('reserved_connections', 0)}"),
        ("headroom", str(s["usable"] - b["total"]), "usable - budget; negative: overcommitted"),
        ("peak sampled", str(summary["peak_connections"]), f"at {summary.get('peak_connections_at_s')} s of the collector"),
    ]
    exact = exact_peak(summary)
    if exact is not None:
        rows.append(("peak exact", display(exact), "from the server's connection log"))
    return rows


def _budget_line(summary: dict[str, Any]) -> str:
    """The summary's own sentence; older summaries: the same function over their figures."""
    return summary.get("budget_sentence") or budget_sentence(summary["budget"], summary["server"])


def _request_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    r = summary["requests"]
    return [
        ("requests", str(r["total"])), ("failed", f"{r['failures']} ({r['failure_ratio']:.2%})"),
        ("requests/s", display(r["rps"])), ("p50 / p95 / p99 (ms)", f"{r['p50_ms']:g} / {r['p95_ms']:g} / {r['p99_ms']:g}"),
    ]


def _extra_sections(summary: dict[str, Any]) -> list[dict[str, Any]]:
    sections = []
    for key, value in summary.items():
        if key in _SHOWN_KEYS or value in (None, {}, []):
            continue
        sections.append({"title": _SECTION_TITLES.get(key, key.replace("_", " ").capitalize()),
                         "rows": flatten(value)})
    return sections


def _context(run: RunSeries) -> dict[str, Any]:
    summary, manifest = run.summary, run.manifest
    drains = drain_rows(run)
    config = {k: v for k, v in manifest["config"].items() if k not in _HIDDEN_SETTINGS}
    return {
        "run_id": run.run_id,
        "verdict": summary["verdict"],
        "reasons": summary["reasons"],
        "findings": accounting_lines(summary),
        "warnings": summary.get("warnings", []),
        "advice": summary.get("advice", []),
        "status": manifest.get("status", "unknown"),
        "started_at": manifest.get("started_at"),
        "ended_at": manifest.get("ended_at"),
        "budget_line": _budget_line(summary),
        "budget_rows": budget_rows(summary),
        "sample_interval": display(summary.get("sample_interval_s")),
        "charts": _charts(run, drains),
        "errors_by_class": summary.get("errors_by_class", {}),
        "drains": drains,
        "request_rows": _request_rows(summary),
        "extra_sections": _extra_sections(summary),
        "config_rows": [(k, display(v)) for k, v in config.items()],
        "version_rows": flatten({**manifest.get("versions", {}), "host": manifest.get("host", {})}),
    }
