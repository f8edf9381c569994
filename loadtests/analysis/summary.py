"""A run's summary and verdict: a pure function of its results folder."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

from loadtests.analysis.bursts import run_burst_figures
from loadtests.analysis.fault_figures import fault_figures
from loadtests.analysis.folder import RunFolder
from loadtests.analysis.advice import advise
from loadtests.analysis.holders import Holders, holder_reasons
from loadtests.analysis.app_errors import app_error_texts
from loadtests.analysis.proxy_cuts import proxy_figures
from loadtests.analysis.headroom import DEFAULT_TARGET, headroom_of, verdict_with_headroom
from loadtests.analysis.load_spread import load_spread
from loadtests.analysis.pgbouncer_figures import pgbouncer_section, pooler_reasons, unattributed
from loadtests.analysis.sections import accounting_sections
from loadtests.analysis.threshold_checks import check_thresholds, threshold_reason
from loadtests.budget import ServerLimits, budget_sentence
from loadtests.failure_classes import error_class
from loadtests.sources.attribution import is_app_client
from loadtests.run_folder import SCHEMA_VERSION

PASS, FAIL, INTERRUPTED, INCOMPLETE = "pass", "fail", "interrupted", "incomplete"
_WORKER_APP = re.compile(r":(\d+)$")


def _number(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "", "N/A") else 0.0
    except ValueError:
        return 0.0


def request_figures(folder: RunFolder) -> dict[str, Any]:
    """Totals and percentiles from Locust's aggregated stats row."""
    row = folder.locust_totals
    if row is None:
        return {"total": 0, "failures": 0, "failure_ratio": 0.0, "rps": 0.0, "p50_ms": 0.0, "p95_ms": 0.0, "p99_ms": 0.0}
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


def errors_by_class(folder: RunFolder) -> dict[str, int]:
    """Failed requests by class, from Locust's failure table."""
    counts: Counter[str] = Counter()
    for row in folder.locust_failures:
        counts[error_class(row.get("Error", ""))] += int(_number(row.get("Occurrences")))
    return dict(sorted(counts.items()))


def worker_pid(application_name: str) -> int | None:
    match = _WORKER_APP.search(application_name)
    return int(match.group(1)) if match else None


def connection_figures(rows: list[dict[str, Any]], *, app_prefix: str) -> dict[str, Any]:
    """Peak, when it happened, sampling rate and the workers seen, from collector rows."""
    if not rows:
        return {"samples": 0, "peak": 0, "peak_at_s": None, "workers_seen": [], "peak_by_worker": {}, "other_clients": {},
                "app_peak": 0}
    peak_row = max(rows, key=lambda r: r["total"])
    per_worker: dict[str, int] = {}
    others: dict[str, int] = {}
    for row in rows:
        for app, states in row["by_application"].items():
            held = others if not is_app_client(app, app_prefix) else per_worker
            held[app] = max(held.get(app, 0), sum(states.values()))
    span = rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]
    return {
        "samples": len(rows),
        "mean_interval_s": round(span / (len(rows) - 1), 4) if len(rows) > 1 else None,
        "peak": peak_row["total"],
        "peak_at_s": round(peak_row["elapsed_s"], 3),
        "workers_seen": sorted(p for p in (worker_pid(a) for a in per_worker) if p is not None),
        "peak_by_worker": dict(sorted(per_worker.items())),
        # Watched connections of clients that are not the app's workers: counted in `peak`, shown as such.
        "other_clients": dict(sorted(others.items())),
        "app_peak": max((_app_total(r, app_prefix) for r in rows), default=0),
        "oldest_backend_s": round(max(r["oldest_backend_s"] for r in rows), 3),
        "oldest_idle_s": round(max(r["oldest_idle_s"] for r in rows), 3),
    }


def _app_total(row: dict[str, Any], app_prefix: str) -> int:
    return sum(sum(states.values()) for app, states in row["by_application"].items() if is_app_client(app, app_prefix))


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
    holders: Holders | None = None,
    per_worker: int | None = None,
    pools_name: str = "the pools' budget",
) -> tuple[str, list[str]]:
    """The verdict and every reason for it.

    `pools_name` says what `pools_total` counts: the app's pools, or behind
    PgBouncer its server pools (the only ones that reach the server).

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
    if holders is None:
        holders = Holders(app_peak=peak)
    held, held_notes = holder_reasons(holders, pools_total=pools_total, per_worker=per_worker, requests=requests)
    failing += held
    notes += held_notes
    if errors.get("db_too_many_connections"):
        failing.append(f"{errors['db_too_many_connections']} requests failed with db_too_many_connections")
    if requests["failure_ratio"] > max_failure_ratio:
        failing.append(
            f"failure ratio {requests['failure_ratio']:.4f} ({requests['failures']} of {requests['total']})"
            f" is above --max-failure-ratio {max_failure_ratio:g}"
        )
    if failing:
        return FAIL, failing
    within = f"peak {peak} connections" if not holders.others else f"the app's peak {holders.app_peak} connections"
    return PASS, [
        f"{within} within {pools_name} {pools_total} and the usable limit {usable}",
        f"failure ratio {requests['failure_ratio']:.4f} within --max-failure-ratio {max_failure_ratio:g}",
        *notes,
    ]


def server_limits(folder: RunFolder) -> dict[str, Any]:
    """The manifest's server section, its limits as the server reported them (server.json) where it did."""
    limits = dict(folder.manifest["server"])
    for name in ("max_connections", "superuser_reserved_connections", "reserved_connections"):
        if name in folder.server_settings:
            limits[name] = int(folder.server_settings[name])
    usable = ServerLimits(
        max_connections=limits["max_connections"],
        superuser_reserved_connections=limits["superuser_reserved_connections"],
        reserved_connections=limits.get("reserved_connections", 0),
    ).usable
    return {**limits, "usable": usable}


def summarize(run: RunFolder | Path) -> dict[str, Any]:
    """Everything summary.json holds, computed from the files of the run folder alone."""
    folder = run if isinstance(run, RunFolder) else RunFolder(run)
    manifest = folder.manifest
    config = manifest["config"]
    budget = manifest["budget"]
    server = server_limits(folder)
    figures = connection_figures(folder.connections, app_prefix=folder.app_prefix)
    figures = unattributed(figures) if folder.manifest.get("pgbouncer") else figures
    requests = request_figures(folder)
    errors = errors_by_class(folder)
    accounting = accounting_sections(folder, sampled=figures)
    pooler = pgbouncer_section(folder)
    # Behind PgBouncer only its server pools reach the server: they are what the server's limit checks.
    server_side = pooler["budget"] if pooler and pooler.get("budget") else None
    proxy = proxy_figures(folder.proxy_events) if folder.proxy_events is not None else None
    verdict, reasons = decide(
        peak=figures["peak"],
        harness_clients=budget["extra_clients"] - config["other_clients"],
        pools_total=server_side["server_pools"] if server_side else budget["pools_total"],
        usable=server["usable"],
        requests=requests,
        errors=errors,
        max_failure_ratio=config["max_failure_ratio"],
        samples=figures["samples"],
        refusals=accounting["exact"].get("refusals"),
        budget_total=server_side["server_total"] if server_side else budget["total"],
        holders=Holders.of(figures, config=config, own_app=not folder.app_prefix,
                           kept_after_silent_cuts=int(proxy["backends_left_open"]) if proxy else 0),
        per_worker=budget.get("per_worker"),
        **({"pools_name": "PgBouncer's server pools"} if server_side else {}),
    )
    if pooler and pooler_reasons(pooler):
        verdict, reasons = FAIL, [*pooler_reasons(pooler), *(reasons if verdict == FAIL else [])]
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
        "schema_version": SCHEMA_VERSION,
        "run_id": manifest["run_id"],
        "verdict": verdict,
        "reasons": reasons,
        "complete": status in ("finished", INTERRUPTED),
        "budget": budget,
        "server": server,
        "budget_sentence": budget_sentence(budget, server),
        "peak_connections": figures["peak"],
        "peak_connections_at_s": figures["peak_at_s"],
        "connections": figures,
        "requests": requests,
        "bursts": run_burst_figures(folder),
        "errors_by_class": errors,
        # Connections back within budget: the server's, so behind PgBouncer within its server pools.
        "faults": fault_figures(folder, pools_total=server_side["server_pools"] if server_side else budget["pools_total"]),
        **accounting,
        **({"pgbouncer": pooler} if pooler else {}),
        "sample_interval_s": config["sample_interval"],
        "started_at": manifest.get("started_at"),
        "ended_at": manifest.get("ended_at"),
    }
    if errors:
        summary["error_texts"] = app_error_texts(folder.path)
    if proxy is not None:
        summary["proxy"] = proxy
    _judge_against_targets(summary, verdict=verdict, reasons=reasons, config=config)
    summary["load_spread"] = load_spread(summary, folder.connections, app_prefix=folder.app_prefix,
                                         max_size=budget["max_size"], pool_rows=folder.pool_stats)
    summary["advice"] = advise(summary, manifest=manifest, headroom_target=_headroom_target(config))
    summary["expected"] = dict(config.get("expected_notes") or {})  # loadtests/analysis/expected.py
    return summary


def _headroom_target(config: dict[str, Any]) -> float:
    return config.get("headroom", DEFAULT_TARGET * 100) / 100


def _judge_against_targets(summary: dict[str, Any], *, verdict: str, reasons: list[str], config: dict[str, Any]) -> None:
    """The headroom target and the --threshold checks, over the harness's own verdict and reasons."""
    # Below the headroom target is a warning; it fails a passing run only with --fail-on-headroom.
    room = headroom_of(summary, other_clients=config["other_clients"], target=_headroom_target(config))
    verdict, reasons, summary["warnings"] = verdict_with_headroom(
        verdict, reasons, headroom=room, enforce=bool(config.get("fail_on_headroom")) and verdict in (PASS, FAIL)
    )
    summary["verdict"], summary["reasons"] = verdict, reasons
    summary["thresholds"] = check_thresholds(summary, config.get("thresholds", []), other_clients=config["other_clients"])
    missed = [threshold_reason(result) for result in summary["thresholds"] if not result["passed"]]
    summary["checks_verdict"] = verdict  # the harness's own checks, before the thresholds
    if missed:
        summary["verdict"] = FAIL if verdict == PASS else verdict
        summary["reasons"] = [*missed, *reasons] if verdict == PASS else [*reasons, *missed]


# -- figures other parts read back from a stored summary.json ---------------------


def exact_peak(summary: dict[str, Any]) -> Any:
    """The exact peak when the summary has one (`exact.peak`; older summaries: `peak_connections`)."""
    exact = summary.get("exact")
    if not isinstance(exact, dict):
        return None
    return next((exact[k] for k in ("peak", "peak_connections", "max_concurrent") if k in exact), None)


def pool_figure(summary: dict[str, Any], key: str) -> Any:
    """A figure of the `pool` section; None when the run scraped no pool stats."""
    pool = summary.get("pool")
    return pool.get(key) if isinstance(pool, dict) and pool.get("available") else None


def mean_pool_wait_ms(summary: dict[str, Any]) -> float | None:
    """Mean time a request waited for a connection, from the pools' own counters."""
    waited, served = pool_figure(summary, "wait_ms_total"), pool_figure(summary, "requests_total")
    return round(waited / served, 2) if waited is not None and served else None


def burst_drains(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The drain after each burst (`lifecycle.drain.bursts`); empty for summaries older than it."""
    return list(summary.get("lifecycle", {}).get("drain", {}).get("bursts", []))


def slowest_drain_s(summary: dict[str, Any]) -> float | None:
    """Seconds until connections were back at min_size after the slowest burst that drained (None: none did)."""
    drained = [b["drain_s"] for b in burst_drains(summary) if b.get("drain_s") is not None]
    return max(drained) if drained else None
