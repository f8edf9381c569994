"""Load shapes as data: a list of stages, and a tiny lookup for Locust's tick()."""

from __future__ import annotations

from dataclasses import dataclass

QUIET = "quiet"
BURST = "burst"


@dataclass(frozen=True)
class LoadDefaults:
    """The default load, defined once: RunConfig's defaults and those of a Locust started by hand."""

    total_seconds: float = 60.0
    baseline_users: int = 2
    burst_users: int = 32
    burst_seconds: float = 8.0
    quiet_seconds: float = 12.0
    cycles: int = 0
    hold_ms: int = 150  # how long each /items/hold request keeps its connection


DEFAULT_LOAD = LoadDefaults()


@dataclass(frozen=True)
class Stage:
    """Users to run until `end_s` seconds from the start."""

    end_s: float
    users: int
    spawn_rate: float
    phase: str


def burst_stages(
    *,
    total_seconds: float,
    baseline_users: int,
    burst_users: int,
    burst_seconds: float,
    quiet_seconds: float,
    cycles: int = 0,
) -> list[Stage]:
    """Quiet, burst, quiet, burst, ... until `total_seconds`.

    Each cycle is a quiet phase at `baseline_users` then a burst at
    `burst_users`; after `cycles` bursts (0: as many as fit) the load stays
    quiet, so the drain after the last burst is seen. Bursts start all their
    users within a second: pools go from idle to saturated at once.
    """
    if total_seconds <= 0:
        raise ValueError("total_seconds must be positive")
    stages: list[Stage] = []
    t = 0.0
    bursts = 0
    burst_rate = float(max(burst_users, 1))
    quiet_rate = float(max(burst_users, baseline_users, 1))
    while t < total_seconds:
        t = min(t + quiet_seconds, total_seconds)
        stages.append(Stage(t, baseline_users, quiet_rate, QUIET))
        if t >= total_seconds or (cycles and bursts >= cycles):
            break
        t = min(t + burst_seconds, total_seconds)
        stages.append(Stage(t, burst_users, burst_rate, BURST))
        bursts += 1
    if stages[-1].end_s < total_seconds:
        stages.append(Stage(total_seconds, baseline_users, quiet_rate, QUIET))
    return stages


def stage_at(stages: list[Stage], run_time: float) -> Stage | None:
    """The stage running at `run_time` seconds, None once the shape is over."""
    for stage in stages:
        if run_time < stage.end_s:
            return stage
    return None


def phases(stages: list[Stage]) -> list[dict[str, float | str | int]]:
    """Stages as intervals `[start, end)`, as stored in the run's manifest."""
    out = []
    start = 0.0
    for stage in stages:
        out.append({"start_s": start, "end_s": stage.end_s, "phase": stage.phase, "users": stage.users})
        start = stage.end_s
    return out


def full_bursts(stages: list[Stage], *, burst_seconds: float) -> int:
    """Bursts that run for their whole `burst_seconds`, not cut short by the end of the load."""
    count, start = 0, 0.0
    for stage in stages:
        if stage.phase == BURST and stage.end_s - start >= burst_seconds - 1e-9:
            count += 1
        start = stage.end_s
    return count
