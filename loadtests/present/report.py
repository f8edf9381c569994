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

from loadtests.analysis.expected import noted, noted_advice
from loadtests.analysis.folder import RunFolder
from loadtests.analysis.pgbouncer_figures import pooler_series
from loadtests.analysis.sections import accounting_lines
from loadtests.analysis.summary import burst_drains, exact_peak
from loadtests.analysis.timeline import (RunSeries, burst_phases, failures_by_class, fault_marks, pool_sizes,
                                        pool_stats, read_series)
from loadtests.analysis.known_pools import known_pools
from loadtests.analysis.load_spread import spread_line
from loadtests.budget import budget_sentence
from loadtests.present import charts, workers
from loadtests.present.configuration import configuration_rows
from loadtests.present.pages import display, flatten, render
from loadtests.present.plotly_js import INLINE, script_source
from loadtests.run_folder import REPORT_HTML, write_atomically
from loadtests.sources.attribution import OTHER_PREFIX

logger = logging.getLogger("poolcheck.report")
# Summary keys the page shows in its own sections; any other key gets a table of its own.
_SHOWN_KEYS = {
    "run_id", "verdict", "reasons", "complete", "budget", "server", "peak_connections", "peak_connections_at_s",
    "requests", "errors_by_class", "sample_interval_s", "started_at", "ended_at", "advice", "warnings", "pgbouncer",
    # told near the top ("What the server and the pools saw"), in the charts and the workers' table
    "connections", "pool", "exact", "lifecycle", "schema_version",
    "thresholds", "checks_verdict",
    # the budget line; the Workers section; the note on each line that shows an expected figure
    "budget_sentence", "load_spread", "expected",
    # the requests table's "in the bursts" row
    "bursts",
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
    pooler = summary.get("pgbouncer", {}).get("budget")
    return [
        # Behind PgBouncer the server's connections are PgBouncer's server pools (+ the harness's own).
        charts.LimitLine("PgBouncer server pools" if pooler else "budget",
                         pooler["server_total"] if pooler else summary["budget"]["total"], "#1f77b4"),
        charts.LimitLine("usable", server["usable"], "#ef6c00"),
        charts.LimitLine("max_connections", server["max_connections"], "#c62828", dash="solid"),
    ]


def worker_limit_line(summary: dict[str, Any]) -> charts.LimitLine:
    """What one worker's pools may hold (its declared pools' total): the line of a worker's own view."""
    return charts.LimitLine("worker's pools", summary["budget"]["per_worker"], "#1f77b4")


def drain_rows(run: RunSeries) -> list[dict[str, Any]]:
    """The summary's drain after each burst, with the burst's end on the charts' axis (seconds of the load)."""
    ends = [end for _, end in burst_phases(run.manifest)]
    return [{**burst, "burst_end_load_s": end} for end, burst in zip(ends, burst_drains(run.summary))]


def _charts(run: RunSeries, drains: list[dict[str, Any]], *, colors: dict[str, str]) -> list[Chart]:
    """Every chart that has something to draw: a chart without a point is left out, the page says why."""
    config = run.manifest["config"]
    marks = charts.Marks(tuple(burst_phases(run.manifest)), tuple(fault_marks(run.folder, t0=run.t0)))
    pooled = _behind_pgbouncer(run.summary)
    figures = [
        ("timeline", charts.timeline(run.connections, run.load, limits=limit_lines(run.summary), marks=marks,
                                     states_label=charts.PGBOUNCER_STATES if pooled else charts.ALL_STATES,
                                     worker_colors=colors, worker_limit=worker_limit_line(run.summary),
                                     worker_views=[w for w in run.connections.worker_states if not w.startswith(OTHER_PREFIX)])),
        ("latency", charts.latency(run.load, marks=marks)),
    ]
    if run.summary["requests"]["failures"]:
        figures.append(("failures", charts.failures(failures_by_class(run.folder, t0=run.t0), run.load, marks=marks)))
    if run.folder.pgbouncer_pools:
        # Each worker's pool size: its connections to PgBouncer, PgBouncer's clients by worker.
        clients = pool_sizes(run.folder, t0=run.t0)
        figures.append(("pgbouncer", charts.pgbouncer(run.connections, pooler_series(run.folder, t0=run.t0),
                                                      limits=limit_lines(run.summary), marks=marks,
                                                      clients_by_worker=clients, worker_colors=colors)))
    pool = pool_stats(run.folder, t0=run.t0)
    if pool:
        figures.append(("pool", charts.pool(pool, marks=marks, worker_colors=colors)))
    known = known_pools(run.manifest)
    if pooled:  # the ages the server shows are PgBouncer's server connections', held against its own timers
        drain = (run.summary.get("lifecycle") or {}).get("drain") or {}
        figures.append(("lifecycle", charts.lifecycle(
            run.connections, drains, max_lifetime=drain.get("server_lifetime_s"), max_idle=drain.get("server_idle_timeout_s"),
            marks=marks, words=charts.PGBOUNCER_LIFECYCLE)))
    else:
        figures.append(("lifecycle", charts.lifecycle(run.connections, drains, max_lifetime=known.max_lifetime,
                                                      max_idle=known.drain_idle, marks=marks)))
    drawn = [(name, figure) for name, figure in figures if _has_points(figure)]
    # --plotlyjs directory: one plotly.min.js beside the run folders (a results folder, a sweep's folder)
    script = script_source(config.get("plotlyjs", INLINE), page_dir=run.run_dir, shared_dir=run.run_dir.parent)
    return [Chart(name, charts.to_html(figure, div_id=f"plot-{name}", include_plotlyjs=script if n == 0 else False))
            for n, (name, figure) in enumerate(drawn)]


def _behind_pgbouncer(summary: dict[str, Any]) -> bool:
    return bool(summary.get("pgbouncer"))


def _server_side_drain(summary: dict[str, Any]) -> str:
    """What closes PgBouncer's server connections, as the summary's drain says it."""
    production = ((summary.get("lifecycle") or {}).get("drain") or {}).get("production") or {}
    return production.get("server_side", "not known")


def _has_points(figure: Any) -> bool:
    return any(y is not None for trace in figure.data for y in (trace.y if trace.y is not None else ()))


def _workers(run: RunSeries) -> tuple[dict[str, str], list[dict[str, Any]], str]:
    """Each worker's colour by its label, its share of the requests and connections, and how even they were."""
    if _behind_pgbouncer(run.summary):  # the server's connections are PgBouncer's: each pool's own count
        sizes = pool_sizes(run.folder, t0=run.t0)
        held = {label.removeprefix("worker "): values for label, (_, values) in sizes.items()}
    else:
        held = {label.removeprefix("worker "): values for label, values in run.connections.workers.items()}
    rows = workers.share_rows(run.summary, connections=held)
    by_pid = workers.worker_colors([row["pid"] for row in rows])
    colors = {workers.worker_label(pid): color for pid, color in by_pid.items()}
    colors.update({label: by_pid[label.removeprefix("worker ")] for label in run.connections.workers})
    return colors, [{**row, "color": by_pid[row["pid"]]} for row in rows], workers.unevenness(rows)


def budget_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The arithmetic as rows: what may be opened, what the server allows, what was seen."""
    b, s = summary["budget"], summary["server"]
    pools = f"{b['hosts']} hosts x {b['workers']} workers x {b['pools_per_worker']} pools x max_size {b['max_size']}"
    if b.get("pool_sizes"):  # pools of different sizes: their sum per worker
        pools = f"{b['hosts']} hosts x {b['workers']} workers x pools of {'+'.join(map(str, b['pool_sizes']))}"
    if b.get("max_overflow") is not None:  # SQLAlchemy engines
        pools += f" (pool_size {b['max_size'] - b['max_overflow']} + max_overflow {b['max_overflow']})"
    pooler = (summary.get("pgbouncer") or {}).get("budget")
    # Behind PgBouncer the pools are its clients: the server's headroom is against its server pools.
    headroom = (("headroom", str(s["usable"] - pooler["server_total"]), "usable - server side total (below);"
                 " negative: overcommitted") if pooler else
                ("headroom", str(s["usable"] - b["total"]), "usable - budget; negative: overcommitted"))
    rows = [
        ("pools may hold", str(b["pools_total"]), pools + (" (PgBouncer's clients)" if pooler else "")),
        ("+ extra clients", str(b["extra_clients"]), "the collector and --other-clients"),
        ("= budget", str(b["total"]), "what the pools would open without PgBouncer" if pooler else ""),
        ("usable", str(s["usable"]), f"max_connections {s['max_connections']} - superuser_reserved "
                                     f"{s['superuser_reserved_connections']} - reserved {s.get('reserved_connections', 0)}"),
        headroom,
        ("peak sampled", str(summary["peak_connections"]), f"at {summary.get('peak_connections_at_s')} s of the collector"),
    ]
    exact = exact_peak(summary)
    if exact is not None:
        rows.append(("peak exact", display(exact), "from the server's connection log"))
    return rows + _pooler_rows(summary)


def _pooler_rows(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Behind PgBouncer, its two levels: the app's pools against max_client_conn, its server pools against usable."""
    section = summary.get("pgbouncer") or {}
    p = section.get("budget")
    if not p:
        return []
    return [
        ("PgBouncer clients may be", str(p["client_total"]), f"the pools above + the admin sampler; max_client_conn {p['max_client_conn']}"
                                                             f" ({'fits' if p['clients_fit'] else 'does NOT fit'})"),
        ("PgBouncer server pools", str(p["server_pools"]), f"{p['pairs']} database/user pair x (default_pool_size"
                                                            f" {p['default_pool_size']} + reserve_pool_size {p['reserve_pool_size']})"),
        ("server side total", str(p["server_total"]), f"+ the harness's own; usable {p['server_usable']}"
                                                       f" ({'fits' if p['server_fits'] else 'does NOT fit'})"),
        ("peak PgBouncer clients", str(section["peak_clients"]), f"SHOW POOLS; up to {section['peak_clients_waiting']} waiting,"
                                                                  f" max wait {section['max_wait_s']} s"),
        ("peak PgBouncer server conns", str(section["peak_server_connections"]), "SHOW POOLS"),
        # The server's connections are PgBouncer's: their application_name is the last client's, not a worker's.
        ("peak per worker", "not attributable", "per PgBouncer server connection, not per worker: each carries"
                                                 " the application_name of the last client it served"),
    ]


def _budget_line(summary: dict[str, Any]) -> str:
    """The summary's own sentence; older summaries: the same function over their figures."""
    pooler = summary.get("pgbouncer", {}).get("budget")
    if pooler:
        return (f"behind PgBouncer: clients {pooler['client_total']} of max_client_conn {pooler['max_client_conn']};"
                f" server side {pooler['server_total']} of usable {pooler['server_usable']}"
                f" ({'fits' if pooler['server_fits'] else 'does NOT fit'})")
    return summary.get("budget_sentence") or budget_sentence(summary["budget"], summary["server"])


def _request_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    r = summary["requests"]
    rows = [
        ("requests", str(r["total"])), ("failed", f"{r['failures']} ({r['failure_ratio']:.2%})"),
        ("requests/s", display(r["rps"])), ("p50 / p95 / p99 (ms)", f"{r['p50_ms']:g} / {r['p95_ms']:g} / {r['p99_ms']:g}"),
    ]
    bursts = summary.get("bursts") or {}
    if bursts.get("available"):  # what a sweep ranks on: the quiet phases would dilute it
        rows.append((f"in the bursts ({bursts['bursts']}, {display(bursts['seconds'])} s)",
                     f"{display(bursts['rps'])} requests/s, p95 {display(bursts['p95_ms'])} ms, {bursts['failures']} failed"))
    return rows


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
    colors, worker_rows, uneven = _workers(run)
    short_config = configuration_rows(manifest)
    return {
        "run_id": run.run_id,
        "verdict": summary["verdict"],
        "reasons": summary["reasons"],
        "findings": [noted(line, summary.get("expected") or {}) for line in accounting_lines(summary)],
        "warnings": summary.get("warnings", []),
        "thresholds": summary.get("thresholds", []),
        "advice": noted_advice(summary.get("advice", []), summary.get("expected") or {}),
        "status": manifest.get("status", "unknown"),
        "started_at": manifest.get("started_at"),
        "ended_at": manifest.get("ended_at"),
        "budget_line": _budget_line(summary),
        "budget_rows": budget_rows(summary),
        "sample_interval": display(summary.get("sample_interval_s")),
        "charts": _charts(run, drains, colors=colors),
        "failures": summary["requests"]["failures"],
        "worker_rows": worker_rows,
        "unevenness": uneven,
        "load_spread": spread_line(summary.get("load_spread")),
        "short_config": short_config,
        "errors_by_class": summary.get("errors_by_class", {}),
        "drains": drains,
        "behind_pgbouncer": _behind_pgbouncer(summary),
        "server_side_drain": _server_side_drain(summary),
        "request_rows": _request_rows(summary),
        "extra_sections": _extra_sections(summary),
        "config_rows": [(k, display(v)) for k, v in config.items() if k not in dict(short_config)],
        "version_rows": flatten({**manifest.get("versions", {}), "host": manifest.get("host", {})}),
    }
