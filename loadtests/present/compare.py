"""Runs side by side: the settings that differ, then what each run measured, best marked.

    poolcheck compare RUN RUN [RUN...]  ->  a terminal table and compare-<runs>.html

Deltas are against the first run. Like the run report, the page is a pure
function of the run folders.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from loadtests.analysis.summary import exact_peak, mean_pool_wait_ms, pool_figure, slowest_drain_s
from loadtests.analysis.timeline import RunSeries, read_series
from loadtests.present import charts
from loadtests.present.pages import display, render
from loadtests.run_folder import SCHEMA_VERSION, write_atomically

logger = logging.getLogger("poolcheck.compare")

LOWER, HIGHER, PASS_FIRST = "lower", "higher", "pass first"
_IGNORED_SETTINGS = {"results_dir", "web_ui", "web_port"}  # where results and views went, not what ran
_VERDICT_RANK = {"pass": 0, "fail": 1, "incomplete": 2, "interrupted": 2}


@dataclass(frozen=True)
class Row:
    """One line of the comparison: a value per run; `better` says which is best (None: not ranked)."""

    label: str
    values: tuple[Any, ...]
    better: str | None = None

    def best(self) -> set[int]:
        """Indexes of the best runs; none when every run has the same value."""
        ranked = [(self._rank(v), i) for i, v in enumerate(self.values) if self._rank(v) is not None]
        if self.better is None or len({rank for rank, _ in ranked}) < 2:
            return set()
        top = min(rank for rank, _ in ranked)
        return {i for rank, i in ranked if rank == top}

    def _rank(self, value: Any) -> float | None:
        if self.better == PASS_FIRST:
            return _VERDICT_RANK.get(value)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        return -value if self.better == HIGHER else value

    def delta(self, index: int) -> str:
        """The change against the first run, e.g. "+6, +25.0%"; empty for settings and text."""
        base, value = self.values[0], self.values[index]
        if index == 0 or self.better is None or not _numeric(base) or not _numeric(value):
            return ""
        change = value - base
        if change == 0:
            return ""
        percent = f", {change / base:+.1%}" if base else ""
        return f"{_signed(change)}{percent}"


def _signed(number: float) -> str:
    return f"{number:+,d}" if isinstance(number, int) else f"{number:+,.2f}".rstrip("0").rstrip(".")


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def differing_settings(runs: list[RunSeries]) -> list[Row]:
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.manifest["config"]))
    rows = []
    for key in keys:
        values = tuple(run.manifest["config"].get(key) for run in runs)
        if key not in _IGNORED_SETTINGS and any(v != values[0] for v in values):
            rows.append(Row(key, values))
    return rows


def measured_rows(runs: list[RunSeries]) -> list[Row]:
    summaries = [run.summary for run in runs]

    def row(label: str, better: str | None, value: Any) -> Row:
        return Row(label, tuple(value(s) for s in summaries), better)

    rows = [row("peak connections (sampled)", LOWER, lambda s: s["peak_connections"])]
    if any(exact_peak(s) is not None for s in summaries):
        rows.append(row("peak connections (exact)", LOWER, exact_peak))
    rows += [
        row("budget", LOWER, lambda s: s["budget"]["total"]),
        row("usable", None, lambda s: s["server"]["usable"]),
        row("requests/s", HIGHER, lambda s: s["requests"]["rps"]),
        row("p50 ms", LOWER, lambda s: s["requests"]["p50_ms"]),
        row("p95 ms", LOWER, lambda s: s["requests"]["p95_ms"]),
        row("p99 ms", LOWER, lambda s: s["requests"]["p99_ms"]),
        row("failures", LOWER, lambda s: s["requests"]["failures"]),
    ]
    classes = sorted({name for s in summaries for name in s.get("errors_by_class", {})})
    rows += [row(f"failures: {name}", LOWER, lambda s, n=name: s.get("errors_by_class", {}).get(n, 0)) for name in classes]
    if any(pool_figure(s, "wait_ms_total") is not None for s in summaries):
        rows += [
            row("pool wait ms (total)", LOWER, lambda s: pool_figure(s, "wait_ms_total")),
            row("pool wait ms (mean per request)", LOWER, mean_pool_wait_ms),
            row("requests waiting (max)", LOWER, lambda s: pool_figure(s, "requests_waiting_max")),
        ]
    rows.append(row("back at min_size s after a burst (slowest)", LOWER, slowest_drain_s))
    rows.append(row("verdict", PASS_FIRST, lambda s: s["verdict"]))
    return rows


def shape_warnings(runs: list[RunSeries]) -> list[str]:
    """Runs of different load shapes still compare, but the reader should know."""
    first = runs[0]
    return [
        f"{run.run_id} ran a different load shape than {first.run_id}: "
        "totals and timelines answer different loads"
        for run in runs[1:]
        if run.manifest.get("shape") != first.manifest.get("shape")
    ]


def terminal_table(runs: list[RunSeries], settings: list[Row], measured: list[Row]) -> Table:
    table = Table(title="poolcheck compare (deltas against the first run; * best)", show_lines=False)
    table.add_column("")
    for run in runs:
        table.add_column(run.run_id, justify="right")
    for n, row in enumerate(settings + measured):
        if n == len(settings) and settings:
            table.add_section()
        best = row.best()
        cells = [_cell(row, i) + (" *" if i in best else "") for i in range(len(runs))]
        table.add_row(row.label, *[f"[bold green]{c}[/]" if i in best else c for i, c in enumerate(cells)])
    return table


def _cell(row: Row, index: int) -> str:
    value = row.values[index]
    text = "-" if value is None else display(value)
    delta = row.delta(index)
    return f"{text} ({delta})" if delta else text


def render_compare(runs: list[RunSeries]) -> str:
    rows = differing_settings(runs) + measured_rows(runs)
    overlay = charts.overlay([(run.run_id, run.connections, run.load) for run in runs])
    return render(
        "compare.html.j2",
        runs=[run.run_id for run in runs],
        warnings=shape_warnings(runs),
        settings_count=len(differing_settings(runs)),
        rows=[{"label": r.label, "best": r.best(), "cells": [("-" if v is None else display(v), r.delta(i))
                                                              for i, v in enumerate(r.values)]} for r in rows],
        overlay=charts.to_html(overlay, div_id="plot-overlay", include_plotlyjs=True),
    )


def comparison(run_dirs: list[Path], *, page: Path | None = None) -> dict[str, Any]:
    """What `poolcheck compare --json` prints: the table's rows, values in run order, `best` as run indexes."""
    runs = [read_series(d) for d in run_dirs]

    def rows(found: list[Row]) -> list[dict[str, Any]]:
        return [{"label": r.label, "values": list(r.values), "better": r.better, "best": sorted(r.best())} for r in found]

    return {
        "schema_version": SCHEMA_VERSION,
        "runs": [run.run_id for run in runs],
        "page": None if page is None else str(page),
        "warnings": shape_warnings(runs),
        "settings": rows(differing_settings(runs)),
        "measured": rows(measured_rows(runs)),
    }


def default_page(run_dirs: list[Path]) -> Path:
    """compare-<first>-vs-<second>[...].html beside the first run's folder."""
    names = [d.resolve().name for d in run_dirs]
    tail = "-vs-".join(names[1:]) if len(names) <= 3 else f"{len(names) - 1}-more"
    return run_dirs[0].resolve().parent / f"compare-{names[0]}-vs-{tail}.html"


def compare(run_dirs: list[Path], *, out: Path | None = None, console: Console | None = None) -> Path:
    """Print the table, write the page; return the page's path."""
    runs = [read_series(d) for d in run_dirs]
    # Off a terminal (CI logs, pipes) rich assumes 80 columns: give the run ids room instead.
    console = console or Console(width=None if sys.stdout.isatty() else 240)
    for warning in shape_warnings(runs):
        console.print(f"warning: {warning}", style="yellow", markup=False)
    console.print(terminal_table(runs, differing_settings(runs), measured_rows(runs)))
    return write_atomically(out or default_page(run_dirs), render_compare(runs))
