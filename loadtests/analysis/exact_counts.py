"""Exact connection counts from the server's log, set against the collector's samples.

A sampler misses whatever opens and closes between two samples; the log does
not. This module counts the same connections the collector counts (every
client session except the harness's own) and says how far the sampled peak
fell short. Times are seconds on the collector's clock (`elapsed_s` of
connections.csv), so the two can be read side by side.
"""

from __future__ import annotations

import csv
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtests.analysis.exact_sessions import attributed_sessions, clamped, is_app_client, watch_of
from loadtests.analysis.folder import RunFolder
from loadtests.run_folder import CONNECTIONS_EXACT_CSV, EMBEDDED_SUPERUSER, SERVER_LOG_DIR, epoch, iso_time
from loadtests.sources.server_log import REFUSAL_MARKERS, Refusal, Session, copy_window, counts_over_time, peak

logger = logging.getLogger("poolcheck.exact")

EXACT_COLUMNS = (
    "timestamp", "elapsed_s", "connections", "app_connections", "event", "application_name", "backend_pid", "client",
)
HARNESS_APPLICATIONS = ("poolcheck-collector",)


@dataclass(frozen=True)
class ClientLog:
    """The client sessions and refusals of a run's server log, the harness's own left out.

    `sessions` are the watched ones, each attributed (`Session.client`), with
    those open before the run from the collector's first look; `unwatched`
    counts the sessions the watch filter left out.
    """

    source: str
    sessions: list[Session]
    refusals: list[Refusal]
    harness_sessions: int
    ends_at: float | None
    unwatched: int = 0
    open_at_start: int = 0


def is_harness(session: Session, *, embedded: bool) -> bool:
    """The collector's session, and on the embedded server every superuser session (set-up, readiness)."""
    return session.application_name in HARNESS_APPLICATIONS or (embedded and session.user == EMBEDDED_SUPERUSER)


def read_client_log(folder: RunFolder) -> ClientLog | None:
    """The run folder's server log as client sessions; None when the folder holds no log."""
    log = folder.server_log
    if log is None:
        return None
    seen = folder.backends
    joined = attributed_sessions(log.sessions, seen, watch=watch_of(folder.manifest["config"]))
    clients = [s for s in joined if not is_harness(s, embedded=folder.embedded)]
    logged = {s.session_id for s in log.sessions}
    harness = sum(1 for s in log.sessions if is_harness(s, embedded=folder.embedded))
    return ClientLog(
        source=log.source,
        sessions=clients,
        refusals=log.refusals,
        harness_sessions=harness,
        ends_at=log.ends_at,
        unwatched=len(log.sessions) - harness - sum(1 for s in clients if s.session_id in logged),
        open_at_start=sum(1 for s in clients if s.session_id not in logged),
    )


def unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}


def exact_figures(log: ClientLog, *, sampled: dict[str, Any], origin: float | None, app_prefix: str) -> dict[str, Any]:
    """The `exact` section of summary.json: exact peak and when, sampled peak, sampling error, refusals.

    Sessions open before the collector's first sample count from it: the run's window.
    """
    sessions = clamped(log.sessions, origin)
    exact_peak, peak_at = peak(counts_over_time(sessions))
    app_peak, _ = peak(counts_over_time(sessions, include=lambda s: is_app_client(s.client, app_prefix)))
    missed = exact_peak - sampled["peak"]
    return {
        "available": True,
        "source": log.source,
        "peak": exact_peak,
        "peak_at": _iso(peak_at),
        "peak_at_s": _relative(peak_at, origin),
        "sampled_peak": sampled["peak"],
        "sampled_peak_at_s": sampled["peak_at_s"],
        "sample_interval_s": sampled.get("mean_interval_s"),
        "sampling_error": missed,
        "sampling_error_ratio": round(missed / exact_peak, 4) if exact_peak else 0.0,
        "app_peak": app_peak,
        "peak_by_worker": peak_by_client(sessions, keep=lambda c: is_app_client(c, app_prefix)),
        "other_clients": peak_by_client(sessions, keep=lambda c: not is_app_client(c, app_prefix)),
        "sessions": len(log.sessions),
        "open_at_start": log.open_at_start,
        "harness_sessions_excluded": log.harness_sessions,
        "unwatched_sessions_excluded": log.unwatched,
        "refusals": len(log.refusals),
        "refusals_by_reason": refusal_reasons(log.refusals),
    }


def peak_by_client(sessions: list[Session], *, keep: Callable[[str], bool]) -> dict[str, int]:
    """The exact peak of each client `keep` accepts (a worker, or another client)."""
    names = sorted({s.client for s in sessions if keep(s.client)})
    return {name: peak(counts_over_time(sessions, include=lambda s, n=name: s.client == n))[0] for name in names}


def refusal_reasons(refusals: list[Refusal]) -> dict[str, int]:
    reasons: Counter[str] = Counter()
    for refusal in refusals:
        lowered = refusal.message.lower()
        reasons[next((m for m in REFUSAL_MARKERS if m in lowered), "other")] += 1
    return dict(sorted(reasons.items()))


def timeline_rows(log: ClientLog, *, origin: float | None, app_prefix: str) -> list[list[Any]]:
    """One row per session start, end or refusal, with the exact counts just after it.

    A session open before the collector's first sample starts the timeline as "open at start".
    """
    sessions = clamped(log.sessions, origin)
    events = [(s.start, 0, +1, s) for s in sessions if not s.refused]
    events += [(s.end, -1, -1, s) for s in sessions if not s.refused and s.end is not None]
    events.sort(key=lambda e: (e[0], e[1]))  # ends before starts at equal times, as counts_over_time
    refused = [(r.at, r) for r in log.refusals]
    rows, total, app = [], 0, 0
    for at, _, delta, session in events:
        total += delta
        app += delta if is_app_client(session.client, app_prefix) else 0
        kind = "disconnect" if delta < 0 else "open at start" if origin is not None and at <= origin else "connect"
        rows.append([at, total, app, kind, session.application_name, session.pid, session.client])
    rows += [[at, None, None, "refused", r.application_name, r.pid, ""] for at, r in refused]
    rows.sort(key=lambda r: r[0])
    _carry_counts(rows)
    return [[_iso(r[0]), _relative(r[0], origin), *r[1:]] for r in rows]


def _carry_counts(rows: list[list[Any]]) -> None:
    """A refusal changes nothing: it shows the counts of the row before it."""
    last = [0, 0]
    for row in rows:
        if row[1] is None:
            row[1], row[2] = last
        last = [row[1], row[2]]


def write_timeline(run_dir: Path, log: ClientLog, *, origin: float | None, app_prefix: str) -> Path:
    path = run_dir / CONNECTIONS_EXACT_CSV
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(EXACT_COLUMNS)
        writer.writerows(timeline_rows(log, origin=origin, app_prefix=app_prefix))
    return path


def _iso(at: float | None) -> str | None:
    return None if at is None else iso_time(at)


def _relative(at: float | None, origin: float | None) -> float | None:
    return None if at is None or origin is None else round(at - origin, 3)


def record_exact(folder: RunFolder, *, server_log: Path | None, log_line_prefix: str | None = None) -> str | None:
    """After the run: keep the run's part of a `--server-log`, then write connections_exact.csv.

    Returns a warning for the user when the log yields nothing, else None.
    """
    if server_log is not None:
        start = epoch(folder.manifest["started_at"])
        copied = copy_window(server_log, folder.file(SERVER_LOG_DIR), start=start, end=time.time(),
                             prefix=log_line_prefix)
        if not copied:
            return (
                f"--server-log {server_log}: no records from the run's time; is it the server's current log,"
                " and is its log_timezone UTC?"
            )
    log = read_client_log(folder)
    if log is not None:
        write_timeline(folder.path, log, origin=folder.clock_origin, app_prefix=folder.app_prefix)
    return None
