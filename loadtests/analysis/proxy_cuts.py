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
        "complete": any(e["event"] == "stopped" for e in events),
    }


def _max(values: list[float]) -> float | None:
    return max(values) if values else None
