"""A run's end, after every child has stopped: exact counts, summary, report, and the lines printed.

Everything written here comes from the run folder alone, as `poolcheck
summarize` and `poolcheck report` would write it again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtests.analysis.advice import advice_lines
from loadtests.analysis.exact_counts import record_exact
from loadtests.analysis.expected import noted, noted_advice
from loadtests.analysis.folder import RunFolder
from loadtests.analysis.load_spread import spread_line
from loadtests.analysis.pgbouncer_figures import pooler_line
from loadtests.analysis.proxy_cuts import proxy_line
from loadtests.analysis.sections import accounting_lines
from loadtests.analysis.threshold_checks import threshold_lines
from loadtests.analysis.summary import INTERRUPTED, PASS, summarize
from loadtests.budget import ServerSideBudget
from loadtests.config import COLLECTOR_CLIENTS, RunConfig
from loadtests.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS
from loadtests.present.junit import write_junit
from loadtests.present.report import write_run_report
from loadtests.redact import Redactor
from loadtests.run.manifest import Manifest
from loadtests.run.signals import Stop
from loadtests.run_folder import SUMMARY, now_iso, point_latest, write_json

logger = logging.getLogger("poolcheck.finish")

FINISHED, ERROR = "finished", "error"  # a run's status besides INTERRUPTED


def finish(
    status: str,
    *,
    config: RunConfig,
    run_dir: Path,
    manifest: Manifest,
    redact: Redactor,
    stop: Stop,
    echo: Callable[[str], None],
) -> int:
    """Write the results for `status`, print them, and return the run's exit code."""
    folder = RunFolder(run_dir)  # read once: the children have stopped, the data files are final
    _record_exact(config, folder=folder, echo=echo)
    summary = _write_results(status, folder=folder, manifest=manifest, redact=redact, echo=echo)
    if stop() and status != INTERRUPTED:
        # Interrupted while the results were written: write them again, saying so.
        status = INTERRUPTED
        summary = _write_results(status, folder=folder, manifest=manifest, redact=redact, echo=echo)
    point_latest(config.results_dir, run_dir)
    for line in summary_lines(summary):
        echo(line)
    echo(str(run_dir))
    if status == INTERRUPTED:
        return EXIT_INTERRUPTED
    if status == ERROR:
        return EXIT_FAIL
    return EXIT_PASS if summary["verdict"] == PASS else EXIT_FAIL


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """What the terminal shows at the end of a run: peak, requests, verdict with reasons, exact counts, advice."""
    r = summary["requests"]
    lines = [
        f"peak {summary['peak_connections']} connections ({_budget_text(summary)},"
        f" usable {summary['server']['usable']}, max_connections {summary['server']['max_connections']});"
        f" {r['total']} requests, {r['failures']} failed, {r['rps']} req/s,"
        f" p50 {r['p50_ms']:g} ms, p95 {r['p95_ms']:g} ms, p99 {r['p99_ms']:g} ms"
    ]
    if summary["errors_by_class"]:
        lines.append("failures by class: " + ", ".join(f"{k} {v}" for k, v in summary["errors_by_class"].items()))
    lines.append(f"verdict: {summary['verdict'].upper()}")
    lines += [f"  - {reason}" for reason in summary["reasons"]]
    lines += [f"  warning: {warning}" for warning in summary.get("warnings", [])]
    lines += threshold_lines(summary.get("thresholds", []))
    expected = summary.get("expected") or {}
    lines += [noted(line, expected) for line in accounting_lines(summary)]
    lines += [pooler_line(summary["pgbouncer"])] if summary.get("pgbouncer") else []
    lines += [line for line in [spread_line(summary.get("load_spread"))] if line]
    if summary.get("proxy"):
        lines.append(proxy_line(summary["proxy"], summary["errors_by_class"]))
    advice = noted_advice(summary.get("advice", []), expected)
    return [*lines, "advice:", *(f"  - {line}" for line in advice_lines(advice))]


def _budget_text(summary: dict[str, Any]) -> str:
    # Behind PgBouncer the server's connections are PgBouncer's: its server pools are their budget.
    pooler = (summary.get("pgbouncer") or {}).get("budget")
    return ServerSideBudget.of(summary["budget"], pooler, harness_clients=COLLECTOR_CLIENTS).words()


def _write_results(
    status: str, *, folder: RunFolder, manifest: Manifest, redact: Redactor, echo: Callable[[str], None]
) -> dict[str, Any]:
    """manifest.json, summary.json and report.html for `status`, secrets scrubbed."""
    manifest.data["versions"]["postgresql"] = folder.server_settings.get("server_version")
    manifest.update(status=status, ended_at=now_iso())
    folder.forget_records()
    summary = summarize(folder)
    write_json(folder.file(SUMMARY), summary)
    write_junit(folder.path, summary)
    redact.scrub_folder(folder.path)
    try:
        echo(f"report: {write_run_report(folder)}")
    except Exception:  # a report that fails must not cost the run its data and verdict
        logger.exception("report.html could not be written; the run's data and verdict stand")
    return summary


def _record_exact(config: RunConfig, *, folder: RunFolder, echo: Callable[[str], None]) -> None:
    """connections_exact.csv from the server's log; the figures are a bonus, never the run's end."""
    try:
        prefix = config.log_line_prefix or folder.server_settings.get("log_line_prefix")
        warning = record_exact(folder, server_log=config.server_log, log_line_prefix=prefix)
    except (OSError, ValueError) as exc:
        warning = f"exact connection timeline not written: {exc}"
    if warning:
        echo(warning)
