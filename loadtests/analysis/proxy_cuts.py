"""Figures of a run behind the cloud-proxy emulator: a pure function of its events.

What the relay saw (loadtests/proxy/events.py): how many connections it cut
and how, whether each was idle with its answer (in a pool, or held by the
app) or cut in the middle of a request, how long the longest pause was, the
requests that hung into a silent cut and how long they hung, and the server
backends a silent cut left behind.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from loadtests.proxy.events import MODES


def proxy_figures(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    events = list(events)
    listening = next((e for e in events if e["event"] == "listening"), {})
    cuts = [e for e in events if e["event"] == "cut"]
    cut_conns = {e["conn"] for e in cuts}
    ends = [e for e in events if e["event"] == "end"]
    client_ends = [e for e in ends if e["side"] == "client"]
    hangs = [e["hang_s"] for e in client_ends if "hang_s" in e]
    by_mode = Counter(e["mode"] for e in cuts)
    return {
        "mode": listening.get("mode"),
        "idle_cut_s": listening.get("idle_cut_s"),
        "connections": sum(e["event"] == "open" for e in events),
        "upstream_failures": sum(e["event"] == "upstream_failed" for e in events),
        "cuts": {mode: by_mode[mode] for mode in MODES},
        # The server spoke last: the connection sat idle with its answer, in a pool or in the app's hands.
        "cut_idle": sum(e["last_direction"] != "up" for e in cuts),
        # The client spoke last: a request ran longer than the cut without a byte either way.
        "cut_mid_request": sum(e["last_direction"] == "up" for e in cuts),
        "longest_idle_s": _max([e["idle_s"] for e in cuts] + [e["max_idle_s"] for e in ends]),
        # How close the connections that were never cut came to the cut.
        "longest_idle_uncut_s": _max([e["max_idle_s"] for e in ends if e["conn"] not in cut_conns]),
        "hung_requests": sum(e["event"] == "hang" for e in events),
        "hang_max_s": _max(hangs),
        "hang_median_s": round(statistics.median(hangs), 3) if hangs else None,
        "hangs_ended_by": dict(sorted(Counter(e["reason"] for e in client_ends if "hang_s" in e).items())),
        # A silent cut whose backend was still there when the relay stopped: a slot the server kept.
        "backends_left_open": sum(
            e["reason"] == "stopped" for e in ends if e["side"] == "server" and e["conn"] in cut_conns
        ),
        # How long the server kept a backend after its connection was cut (to its end, or to the relay's stop).
        "backend_after_cut_max_s": _max(_backend_after_cut(cuts, ends)),
        "complete": any(e["event"] == "stopped" for e in events),
    }


def _backend_after_cut(cuts: list[Mapping[str, Any]], ends: list[Mapping[str, Any]]) -> list[float]:
    cut_at = {e["conn"]: e["t"] for e in cuts}
    return [round(e["t"] - cut_at[e["conn"]], 3) for e in ends if e["side"] == "server" and e["conn"] in cut_at]


def _max(values: list[float]) -> float | None:
    return max(values) if values else None


def proxy_line(section: Mapping[str, Any], errors_by_class: Mapping[str, int]) -> str:
    """What the terminal shows of a run behind the emulator: cuts, hangs, and the failures of the run."""
    cuts = sum(section["cuts"].values())
    line = (
        f"proxy ({section['mode']} cut after {section['idle_cut_s']:g} s idle): {section['connections']} connections,"
        f" {cuts} cut ({section['cut_idle']} idle with their answer, {section['cut_mid_request']} mid-request)"
    )
    if section["longest_idle_s"] is not None:
        line += f", longest pause {section['longest_idle_s']:g} s"
    if section["hung_requests"]:
        ended = ", ".join(f"{reason} {n}" for reason, n in section["hangs_ended_by"].items()) or "not ended"
        line += (f"; {section['hung_requests']} requests hung into a silent cut, up to {section['hang_max_s']} s"
                 f" (median {section['hang_median_s']} s; ended by {ended})")
    if section["backends_left_open"]:
        line += f"; {section['backends_left_open']} server backends of cut connections still open at the end"
    failures = ", ".join(f"{name} {n}" for name, n in errors_by_class.items()) or "none"
    return f"{line}; failed requests: {failures}"
