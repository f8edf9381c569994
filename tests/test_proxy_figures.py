"""The proxy figures from hand-written events, and the events file read back (no relay, no server)."""

from __future__ import annotations

from pathlib import Path

from loadtests.analysis.proxy_cuts import proxy_figures
from loadtests.proxy.events import PROXY_EVENTS, EventLog, listening_port, read_events


def _silent_run() -> list[dict]:
    """Three connections: 1 used steadily, 2 cut idle then hung 2.5 s, 3 cut mid-request and never used again."""
    return [
        {"event": "listening", "t": 0, "port": 5000, "mode": "silent", "idle_cut_s": 2.0},
        {"event": "open", "t": 1, "conn": 1},
        {"event": "open", "t": 1, "conn": 2},
        {"event": "open", "t": 1, "conn": 3},
        {"event": "upstream_failed", "t": 1, "conn": 4, "error": "refused"},
        {"event": "cut", "t": 3, "conn": 2, "mode": "silent", "idle_s": 2.01, "last_direction": "down"},
        {"event": "cut", "t": 4, "conn": 3, "mode": "silent", "idle_s": 2.3, "last_direction": "up"},
        {"event": "hang", "t": 5, "conn": 2, "bytes": 14},
        {"event": "end", "t": 7.5, "conn": 2, "side": "client", "reason": "client_timeout", "max_idle_s": 2.01, "hang_s": 2.5},
        {"event": "end", "t": 8, "conn": 1, "side": "client", "reason": "eof", "max_idle_s": 1.4},
        {"event": "end", "t": 8, "conn": 1, "side": "server", "reason": "relay", "max_idle_s": 1.4},
        {"event": "end", "t": 9, "conn": 2, "side": "server", "reason": "stopped", "max_idle_s": 2.01},
        {"event": "end", "t": 9, "conn": 3, "side": "client", "reason": "stopped", "max_idle_s": 2.3},
        {"event": "end", "t": 9, "conn": 3, "side": "server", "reason": "eof", "max_idle_s": 2.3},
        {"event": "stopped", "t": 9, "reason": "signal", "open": 2},
    ]


def test_figures_of_a_silent_run() -> None:
    figures = proxy_figures(_silent_run())
    assert figures == {
        "mode": "silent",
        "idle_cut_s": 2.0,
        "connections": 3,
        "upstream_failures": 1,
        "cuts": {"reset": 0, "silent": 2},
        "cut_idle": 1,
        "cut_mid_request": 1,
        "longest_idle_s": 2.3,
        "longest_idle_uncut_s": 1.4,
        "hung_requests": 1,
        "hang_max_s": 2.5,
        "hang_median_s": 2.5,
        "hangs_ended_by": {"client_timeout": 1},
        "backends_left_open": 1,
        "complete": True,
    }


def test_figures_of_no_events() -> None:
    figures = proxy_figures([])
    assert figures["connections"] == 0 and figures["cuts"] == {"reset": 0, "silent": 0}
    assert figures["longest_idle_s"] is None and figures["hang_median_s"] is None
    assert figures["complete"] is False


def test_events_read_back_without_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / PROXY_EVENTS
    log = EventLog(path)
    log.write("listening", port=5123, mode="reset", idle_cut_s=1.0)
    log.write("open", conn=1, client_port=40000)
    log.close()
    assert listening_port(path) == 5123
    with open(path, "a") as f:
        f.write('{"event":"cut","conn"')  # a relay killed mid-write
    assert [e["event"] for e in read_events(path)] == ["listening", "open"]
    assert listening_port(tmp_path / "missing.jsonl") is None
