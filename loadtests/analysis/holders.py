"""Who holds the connections, in the verdict's words: the app's workers, other clients, or nobody.

The sample app's pools are the harness's own settings: a worker above them
leaked. An app of your own has the pools its team declared: a worker above
them has more connections than the declared pools may hold, which is a wrong
declaration or a pool nobody declared as often as a leak; the verdict says
which process holds them and lets the reader judge. A connection of another
client (a process that does not serve the app) is counted once, as that
client's, against `--other-clients`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Holders:
    """The sampled peaks of the app's workers and of every other client."""

    app_peak: int
    by_worker: dict[str, int] = field(default_factory=dict)
    others: dict[str, int] = field(default_factory=dict)
    declared_other_clients: int = 0
    own_app: bool = False
    watch: tuple[str, ...] = ()
    # Backends of connections the cloud-proxy emulator cut silently, still on the server at the end: the server
    # kept them, the pools did not leak them.
    kept_after_silent_cuts: int = 0

    @classmethod
    def of(cls, figures: dict[str, Any], *, config: dict[str, Any], own_app: bool,
           kept_after_silent_cuts: int = 0) -> "Holders":
        # The sample app's pools are the harness's own: every watched connection counts against them, as always.
        return cls(
            app_peak=figures.get("app_peak", figures["peak"]) if own_app else figures["peak"],
            by_worker=figures.get("peak_by_worker", {}),
            others=figures.get("other_clients", {}) if own_app else {},
            declared_other_clients=config.get("other_clients", 0),
            own_app=own_app,
            watch=tuple(f"{k}={v}" for k, v in sorted((config.get("watch_filter") or {}).items())),
            kept_after_silent_cuts=kept_after_silent_cuts,
        )

    @property
    def others_peak(self) -> int:
        """At most the sum of each other client's own peak."""
        return sum(self.others.values())


def holder_reasons(
    holders: Holders, *, pools_total: int, per_worker: int | None, requests: dict[str, Any]
) -> tuple[list[str], list[str]]:
    """(failing reasons, notes) about who held the connections."""
    failing: list[str] = []
    notes: list[str] = []
    served = requests["total"] - requests["failures"]
    if holders.own_app and holders.app_peak + holders.others_peak == 0 and served > 0:
        which = " ".join(holders.watch) if holders.watch else "none: every connection of the server"
        failing.append(
            f"no watched connections while {served} requests succeeded: the watch filter ({which})"
            " matches none of the app's connections (check --watch-filter and --dsn)"
        )
    if holders.app_peak > pools_total:
        if holders.kept_after_silent_cuts:
            failing.append(
                f"peak {holders.app_peak} connections is above what the pools may hold ({pools_total}): the server"
                f" kept the backends of connections the proxy cut silently ({holders.kept_after_silent_cuts} still there"
                " at the end) while the pools opened new ones"
            )
        elif holders.own_app:
            failing.append(
                f"the app's workers held {holders.app_peak} connections, more than the declared pools may hold"
                f" ({pools_total}){_over(holders.by_worker, per_worker)}: declare every pool of a worker"
                " (--pool, --pool-sizes) or look for connections opened outside them"
            )
        else:
            failing.append(f"peak {holders.app_peak} connections is above what the pools may hold ({pools_total}):"
                           " connections leaked")
    if holders.others:
        listed = ", ".join(f"{name} {count}" for name, count in sorted(holders.others.items()))
        line = (f"other clients (not the app's workers) held up to {holders.others_peak} connections ({listed});"
                f" the budget counts --other-clients {holders.declared_other_clients}")
        if holders.others_peak > holders.declared_other_clients:
            failing.append(line + f": declare them with --other-clients {holders.others_peak}")
        else:
            notes.append(line)
    return failing, notes


def _over(by_worker: dict[str, int], per_worker: int | None) -> str:
    if per_worker is None:
        return ""
    over = {name: count for name, count in by_worker.items() if count > per_worker}
    if not over:
        return ""
    return "; above a worker's " + str(per_worker) + ": " + ", ".join(f"{n} {c}" for n, c in sorted(over.items()))
