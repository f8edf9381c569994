"""A run's summary and verdict: a pure function of its results folder."""

from __future__ import annotations

import csv
import re
from collections import Counter
from pathlib import Path
from typing import Any

from loadtests.analysis.advice import advise
from loadtests.analysis.headroom import headroom_of, headroom_warning
from loadtests.analysis.sections import accounting_sections
from loadtests.sources.collector import CONNECTIONS_CSV, SERVER_JSON, read_connections
from loadtests.faults import fault_figures, read_events
from loadtests.run_folder import LOCUST_PREFIX, MANIFEST, read_json

PASS, FAIL, INTERRUPTED, INCOMPLETE = "pass", "fail", "interrupted", "incomplete"
ERROR_CLASSES = (
    "pool_timeout",
    "pool_queue_full",
    "db_too_many_connections",
    "db_connection_closed",
    "db_error",
    "http_connection_error",
)
_WORKER_APP = re.compile(r":(\d+)$")


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "N/A") else 0.0
    except ValueError:
        return 0.0


def read_requests(run_dir: Path) -> dict[str, Any]:
    """Totals and percentiles from Locust's aggregated stats row."""
    path = run_dir / f"{LOCUST_PREFIX}_stats.csv"
    empty = {"total": 0, "failures": 0, "failure_ratio": 0.0, "rps": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
    if not path.exists():
        return empty
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("Name") == "Aggregated"]
    if not rows:
        return empty
    row = rows[-1]
    total = int(_number(row["Request Count"]))
    failures = int(_number(row["Failure Count"]))
    return {
        "total": total,
        "failures": failures,
        "failure_ratio": failures / total if total else 0.0,
        "rps": round(_number(row["Requests/s"]), 2),
        "p50_ms": _number(row["50%"]),
        "p95_ms": _number(row["95%"]),
        "p99_ms": _number(row["99%"]),
    }


def error_class(message: str) -> str:
    """The class named in a Locust failure message, e.g. "CatchResponseError('pool_timeout')"."""
    found = re.search(r"\b(pool_[a-z_]+|db_[a-z_]+|http_[a-z0-9_]+)\b", message)
    return found.group(1) if found else "other"


def read_errors(run_dir: Path) -> dict[str, int]:
    path = run_dir / f"{LOCUST_PREFIX}_failures.csv"
    counts: Counter[str] = Counter()
    if path.exists():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                counts[error_class(row.get("Error", ""))] += int(_number(row.get("Occurrences")))
    return dict(sorted(counts.items()))


def worker_pid(application_name: str) -> int | None:
    match = _WORKER_APP.search(application_name)
    return int(match.group(1)) if match else None


def app_prefix(manifest: dict[str, Any]) -> str:
    """The prefix of the app's clients in connections.csv: `poolcheck-app:` for the sample app,
    none for an app of your own, whose watched connections are all its own."""
    name = manifest.get("app_name", "poolcheck-app")
    return f"{name}:" if name else ""


def connection_figures(rows: list[dict[str, Any]], *, app_prefix: str) -> dict[str, Any]:
    """Peak, when it happened, sampling rate and the workers seen, from collector rows."""
    if not rows:
        return {"samples": 0, "peak": 0, "peak_at_s": None, "workers_seen": [], "peak_by_worker": {}}
    peak_row = max(rows, key=lambda r: r["total"])
    per_worker: dict[str, int] = {}
    for row in rows:
        for app, states in row["by_application"].items():
            if app.startswith(app_prefix):
                per_worker[app] = max(per_worker.get(app, 0), sum(states.values()))
    span = rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    return {
        "samples": len(rows),
        "mean_interval_s": round(span / (len(rows) - 1), 4) if len(rows) > 1 else None,
        "peak": peak_row["total"],
        "peak_at_s": round(peak_row["elapsed_s"], 3),
        "workers_seen": sorted(p for p in (worker_pid(a) for a in per_worker) if p is not None),
        "peak_by_worker": dict(sorted(per_worker.items())),
        "oldest_backend_s": round(max(r["oldest_backend_s"] for r in rows), 3),
        "oldest_idle_s": round(max(r["oldest_idle_s"] for r in rows), 3),
    }


def decide(
    *,
    peak: int,
    harness_clients: int,
    pools_total: int,
    usable: int,
    requests: dict[str, Any],
    errors: dict[str, int],
    max_failure_ratio: float,
    samples: int,
    refusals: int | None = None,
    budget_total: int | None = None,
) -> tuple[str, list[str]]:
    """The verdict and every reason for it.

    `refusals` counts the connection attempts the server refused, from its
    log; None when there is no log. A peak at the usable limit fails only
    when the server refused someone, or when the log cannot tell.
    """
    failing: list[str] = []
    notes: list[str] = []
    if samples == 0:
        failing.append("no connection samples were recorded")
    if requests["total"] == 0:
        failing.append("no requests were made")
    if budget_total is not None and budget_total > usable:
        failing.append(
            f"the budget {budget_total} exceeds the usable limit {usable}: the pools may open more connections"
            " than the server accepts (the run was allowed by --allow-overcommit)"
        )
    at_limit = peak + harness_clients >= usable
    if refusals:
        failing.append(f"the server refused {refusals} connection attempts: the usable limit {usable} was reached")
    elif at_limit and refusals is None:
        failing.append(
            f"peak {peak} connections (+{harness_clients} of the harness) reached the usable limit {usable}:"
            " further connections are refused (no server log to tell whether any were)"
        )
    elif at_limit:
        notes.append(f"peak {peak} (+{harness_clients} of the harness) filled the usable limit {usable} without a refusal: no headroom left")
    if peak > pools_total:
        failing.append(f"peak {peak} connections is above what the pools may hold ({pools_total}): connections leaked")
    if errors.get("db_too_many_connections"):
        failing.append(f"{errors['db_too_many_connections']} requests failed with db_too_many_connections")
    if requests["failure_ratio"] > max_failure_ratio:
        failing.append(
            f"failure ratio {requests['failure_ratio']:.4f} ({requests['failures']} of {requests['total']})"
            f" is above --max-failure-ratio {max_failure_ratio:g}"
        )
    if failing:
        return FAIL, failing
    return PASS, [
        f"peak {peak} connections within the pools' budget {pools_total} and the usable limit {usable}",
        f"failure ratio {requests['failure_ratio']:.4f} within --max-failure-ratio {max_failure_ratio:g}",
        *notes,
    ]


def _server_limits(manifest: dict[str, Any], run_dir: Path) -> dict[str, int]:
    """Limits as the server reported them (server.json), else as configured."""
    limits = dict(manifest["server"])
    path = run_dir / SERVER_JSON
    if path.exists():
        reported = read_json(path)
        for name in ("max_connections", "superuser_reserved_connections", "reserved_connections"):
            if name in reported:
                limits[name] = int(reported[name])
    limits["usable"] = (
        limits["max_connections"] - limits["superuser_reserved_connections"] - limits.get("reserved_connections", 0)
    )
    return limits


def summarize(run_dir: Path) -> dict[str, Any]:
    """Everything summary.json holds, computed from the files of `run_dir` alone."""
    manifest = read_json(run_dir / MANIFEST)
    config = manifest["config"]
    budget = manifest["budget"]
    server = _server_limits(manifest, run_dir)
    csv_path = run_dir / CONNECTIONS_CSV
    rows = read_connections(csv_path) if csv_path.exists() else []
    figures = connection_figures(rows, app_prefix=app_prefix(manifest))
    requests = read_requests(run_dir)
    errors = read_errors(run_dir)
    accounting = accounting_sections(run_dir, manifest=manifest, rows=rows, sampled=figures, app_prefix=app_prefix(manifest))
    verdict, reasons = decide(
        peak=figures["peak"],
        harness_clients=budget["extra_clients"] - config["other_clients"],
        pools_total=budget["pools_total"],
        usable=server["usable"],
        requests=requests,
        errors=errors,
        max_failure_ratio=config["max_failure_ratio"],
        samples=figures["samples"],
        refusals=accounting["exact"].get("refusals"),
        budget_total=budget["total"],
    )
    status = manifest.get("status", "unknown")
    if status == INTERRUPTED:
        verdict = INTERRUPTED
        reasons = ["the run was interrupted; figures cover the part that ran", *reasons]
    elif status in ("running", "abandoned"):
        verdict = INCOMPLETE
        reasons = [f"incomplete: the runner stopped before the end (status {status}); figures cover what was recorded", *reasons]
    elif status == "error":
        verdict = FAIL
        reasons = [f"the run broke off: {manifest.get('error', 'unknown error')}", *reasons]
    summary = {
        "run_id": manifest["run_id"],
        "verdict": verdict,
        "reasons": reasons,
        "complete": status in ("finished", INTERRUPTED),
        "budget": budget,
        "server": server,
        "peak_connections": figures["peak"],
        "peak_connections_at_s": figures["peak_at_s"],
        "connections": figures,
        "requests": requests,
        "errors_by_class": errors,
        "faults": fault_figures(
            run_dir, events=read_events(run_dir), connections=rows, pools_total=budget["pools_total"]
        ),
        **accounting,
        "sample_interval_s": config["sample_interval"],
        "started_at": manifest.get("started_at"),
        "ended_at": manifest.get("ended_at"),
    }
    # Below the headroom target is a warning: it does not change the verdict.
    warning = headroom_warning(headroom_of(summary, other_clients=config["other_clients"]))
    summary["warnings"] = [warning] if warning else []
    summary["advice"] = advise(summary, manifest=manifest)
    return summary
