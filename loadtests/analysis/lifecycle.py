"""Connection lifecycle: ages against max_lifetime, the drain after each burst, orphans.

psycopg_pool's own rules are what these figures are held against:

- max_lifetime is enforced when a connection comes back to the pool, so an
  idle connection can live past it;
- a pool above min_size closes at most one unused connection per max_idle
  interval, so N extra connections take about N x max_idle to go away.

Counts are step functions, `[(epoch seconds, count just after), ...]`, from the
server's log when the run has one, else from the collector's samples.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import Any

from loadtests.run_folder import epoch
from loadtests.sources.server_log import Session, counts_over_time

Steps = list[tuple[float, int]]
DEFAULT_PROD_MAX_IDLE = 600.0  # psycopg_pool's default max_idle
# A quiet phase shorter than one tick of Locust's shape measures no drain: the
# connections seen then are the burst's, or the teardown's once the load stopped.
MIN_QUIET_S = 1.0
_LISTED = 10  # sessions listed by name when more outlived max_lifetime


def value_at(steps: Steps, at: float) -> int:
    """The count at time `at`: the last step at or before it (0 before the first)."""
    i = bisect.bisect_right(steps, (at, float("inf")))
    return steps[i - 1][1] if i else 0


def max_between(steps: Steps, start: float, end: float) -> int:
    inside = [count for at, count in steps if start < at <= end]
    return max([value_at(steps, start), *inside])


def first_at_or_below(steps: Steps, start: float, end: float, target: int) -> float | None:
    """The first time in `[start, end]` the count is at most `target`; None if it never is."""
    if value_at(steps, start) <= target:
        return start
    return next((at for at, count in steps if start < at <= end and count <= target), None)


def sampled_steps(rows: list[dict[str, Any]], *, keep: Callable[[str], bool], states: tuple[str, ...] | None = None) -> Steps:
    """Collector rows as steps: the connections of the applications `keep` accepts, in `states` (None: all)."""
    return [(epoch(row["timestamp"]), _count(row["by_application"], keep, states)) for row in rows]


def _count(by_application: dict[str, dict[str, int]], keep: Callable[[str], bool], states: tuple[str, ...] | None) -> int:
    return sum(
        n for app, counts in by_application.items() if keep(app)
        for state, n in counts.items() if states is None or state in states
    )


def exact_steps(sessions: list[Session], *, keep: Callable[[str], bool]) -> Steps:
    """Log sessions as steps: those of the clients `keep` accepts (`Session.client`, else the application_name)."""
    return counts_over_time(sessions, include=lambda s: keep(s.client or s.application_name))


def burst_windows(shape: list[dict[str, Any]], *, load_start: float) -> list[tuple[float, float, float]]:
    """(burst start, burst end, end of the quiet that follows) in epoch seconds, for each burst."""
    windows = []
    for i, phase in enumerate(shape):
        if phase["phase"] != "burst":
            continue
        following = next((p for p in shape[i + 1 :] if p["phase"] == "burst"), None)
        quiet_end = following["start_s"] if following else shape[-1]["end_s"]
        windows.append((load_start + phase["start_s"], load_start + phase["end_s"], load_start + quiet_end))
    return windows


def windows_that_ran(windows: list[tuple[float, float, float]], *, load_end: float | None) -> list[tuple[float, float, float]]:
    """The bursts that started before the load ended, each quiet phase cut at that end.

    An interrupted run never ran its later bursts; after the load's end the
    connections close with the app's teardown, which is no drain. A burst cut
    short by the end keeps no quiet phase: its drain is not measured.
    """
    if load_end is None:
        return windows
    return [(start, end, max(min(quiet_end, load_end), end) if end < load_end else end)
            for start, end, quiet_end in windows if start < load_end]


def drain_after(
    window: tuple[float, float, float],
    *,
    total: Steps,
    per_worker: dict[str, Steps],
    active: Steps,
    quiet_users: int,
    target: int | None,
    min_size: int | None,
    max_idle: float | None,
) -> dict[str, Any]:
    """How long the connections took to come back to `target` after one burst, and the prediction.

    psycopg's clock starts when the pools stop being busy, which can be a
    little after the burst's nominal end (Locust's shape ticks once a second,
    queued requests are still served): `load_tail_s` is that delay, read from
    the sampled active connections falling to the quiet phase's users.
    """
    start, end, quiet_end = window
    if quiet_end - end < MIN_QUIET_S:
        quiet_end = end  # nothing to measure: see MIN_QUIET_S
    peak_per_worker = max((max_between(steps, start, end) for steps in per_worker.values()), default=0)
    # min_size, max_idle or target None: not declared, and what needs it is None ("not known").
    extra = None if min_size is None else max(peak_per_worker - min_size, 0)
    back_at = None if target is None or quiet_end <= end else first_at_or_below(total, end, quiet_end, target)
    drain_s = None if back_at is None else round(back_at - end, 3)
    idle_at = first_at_or_below(active, end, quiet_end, quiet_users)
    tail_s = round((idle_at if idle_at is not None else end) - end, 3)
    # One connection per max_idle tick; the first tick after the load may still
    # have seen the pool busy, so the bound allows one tick more.
    if extra is None or max_idle is None:
        predicted_s = predicted_max_s = None
    else:
        predicted_s = round(extra * max_idle, 3)
        predicted_max_s = round((extra + 1) * max_idle, 3) if extra else 0.0
    return {
        "peak_total": max_between(total, start, end),
        "peak_per_worker": peak_per_worker,
        "target": target,
        "drained": back_at is not None,
        "drain_s": drain_s,
        "load_tail_s": tail_s,
        "left_at_quiet_end": value_at(total, quiet_end),
        "quiet_s": round(quiet_end - end, 3),
        "predicted_s": predicted_s,
        "predicted_max_s": predicted_max_s,
        "within_prediction": None if drain_s is None or predicted_max_s is None else drain_s <= tail_s + predicted_max_s,
    }


def production_drain(
    *, peak_per_worker: int, min_size: int | None, max_size: int | None, prod_max_idle: float | None
) -> dict[str, Any]:
    """The same rule at production's max_idle: how long the burst's extra connections stay idle.

    None for what needs a setting nobody declared (`not_known` names it).
    """
    if min_size is None or max_size is None or prod_max_idle is None:
        missing = "min_size" if min_size is None or max_size is None else "max_idle"
        extra = None if min_size is None else max(peak_per_worker - min_size, 0)
        return {"max_idle_s": prod_max_idle, "peak_per_worker": peak_per_worker, "extra_per_worker": extra,
                "predicted_drain_s": None, "predicted_drain": f"not known ({missing} not declared)",
                "worst_case_drain_s": None, "worst_case_drain": "not known", "not_known": missing}
    extra = max(peak_per_worker - min_size, 0)
    worst = max(max_size - min_size, 0)
    return {
        "max_idle_s": prod_max_idle,
        "peak_per_worker": peak_per_worker,
        "extra_per_worker": extra,
        "predicted_drain_s": round(extra * prod_max_idle, 1),
        "predicted_drain": human_duration(extra * prod_max_idle),
        "worst_case_drain_s": round(worst * prod_max_idle, 1),
        "worst_case_drain": human_duration(worst * prod_max_idle),
    }


def engine_production_drain(*, peak_per_worker: int, pool_size: int) -> dict[str, Any]:
    """A SQLAlchemy engine (QueuePool): its overflow closes as each connection is returned, so
    nothing waits for an idle timer; its base pool never shrinks, so what it opened up to
    pool_size stays open for good (pool_recycle only replaces a connection, on its next checkout)."""
    return {
        "max_idle_s": None,
        "peak_per_worker": peak_per_worker,
        "extra_per_worker": 0,  # nothing above the floor lingers: the overflow is closed on return
        "overflow_closed_per_worker": max(peak_per_worker - pool_size, 0),
        "kept_per_worker": min(peak_per_worker, pool_size),
        "predicted_drain_s": 0.0,
        "predicted_drain": human_duration(0),
        "rule": "overflow closed on return; pool_size kept, never shrinks",
    }


def human_duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:g} s"


def session_ages(sessions: list[Session], *, log_end: float | None) -> list[tuple[float, Session]]:
    """(age in seconds, session) for every session, oldest first; open ones aged to the log's end."""
    aged = []
    for session in sessions:
        end = session.end if session.end is not None else log_end
        if end is not None and not session.refused:
            aged.append((end - session.start, session))
    return sorted(aged, key=lambda pair: pair[0], reverse=True)


def age_figures(
    *, sessions: list[Session] | None, log_end: float | None, rows: list[dict[str, Any]], max_lifetime: float | None
) -> dict[str, Any]:
    """Oldest connection against max_lifetime, and every session that outlived it (max_lifetime None: not known)."""
    oldest_sampled = max((r["oldest_backend_s"] for r in rows), default=0.0)
    figures: dict[str, Any] = {"max_lifetime_s": max_lifetime, "oldest_sampled_s": round(oldest_sampled, 3)}
    if max_lifetime is None:
        aged = session_ages(sessions, log_end=log_end) if sessions is not None else []
        return {**figures, "source": "samples" if sessions is None else "server log", "exceeded": None,
                "oldest_session_s": round(aged[0][0], 3) if aged else None,
                "not_known": "max_lifetime not declared"}
    if sessions is None:
        return {**figures, "source": "samples", "exceeded": oldest_sampled > max_lifetime}
    aged = session_ages(sessions, log_end=log_end)
    over = [(age, s) for age, s in aged if age > max_lifetime]
    return {
        **figures,
        "source": "server log",
        "oldest_session_s": round(aged[0][0], 3) if aged else 0.0,
        "exceeded": bool(over),
        "sessions_over_max_lifetime": len(over),
        "over_max_lifetime": [
            {
                "application_name": s.application_name,
                "backend_pid": s.pid,
                "age_s": round(age, 3),
                "over_by_s": round(age - max_lifetime, 3),
                "open_at_log_end": s.end is None,
            }
            for age, s in over[:_LISTED]
        ],
    }


def orphan_figures(
    workers: list[dict[str, Any]], *, sessions: list[Session] | None, app_prefix: str, origin: float | None
) -> dict[str, Any]:
    """Connections whose application_name names a worker pid that no longer existed when checked."""
    dead = [w for w in workers if not w["alive"] and w["connections"] > 0]
    per_check: dict[str, int] = {}
    by_pid: dict[int, dict[str, Any]] = {}
    for row in dead:
        per_check[row["timestamp"]] = per_check.get(row["timestamp"], 0) + row["connections"]
        entry = by_pid.setdefault(row["pid"], {"pid": row["pid"], "first_seen_s": row["elapsed_s"], "connections_max": 0})
        entry["last_seen_s"] = row["elapsed_s"]
        entry["connections_max"] = max(entry["connections_max"], row["connections"])
    for entry in by_pid.values():
        entry["server_closed_at_s"] = _last_end(sessions, f"{app_prefix}{entry['pid']}", origin)
    return {
        "checked": bool(workers),
        "connections_max": max(per_check.values(), default=0),
        "workers": [by_pid[pid] for pid in sorted(by_pid)],
    }


def _last_end(sessions: list[Session] | None, application_name: str, origin: float | None) -> float | None:
    """When the server ended the last session of that name; None if one was still open (or no log)."""
    if sessions is None or origin is None:
        return None
    named = [s for s in sessions if s.application_name == application_name and not s.refused]
    if not named or any(s.end is None for s in named):
        return None
    return round(max(s.end for s in named if s.end is not None) - origin, 3)

