"""The live view's figures: requests/s that reach zero with the load, a clock that stops at the total,
the web UI's close-down counted down, and one budget word per number."""

from __future__ import annotations

from pathlib import Path

from loadtests.budget import ServerLimits
from loadtests.config import RunConfig
from loadtests.live import state as live_state
from loadtests.live.state import LiveState
from loadtests.live.terminal import Progress
from loadtests.live.web_ui import read_connection_lines, table_rows
from loadtests.run.finish import summary_lines
from loadtests.run_folder import LOCUST_HISTORY_CSV, MANIFEST, write_json

HEADER = "Timestamp,User Count,Type,Name,Requests/s,Total Request Count,Total Failure Count\n"


def _history(run_dir: Path, rows: list[tuple[int, int, float, int]]) -> None:
    """Locust's history: (second, users, its own rolling Requests/s, cumulative requests)."""
    with open(run_dir / LOCUST_HISTORY_CSV, "a") as f:
        if f.tell() == 0:
            f.write(HEADER)
        f.writelines(f"{t},{users},,Aggregated,{rolling},{total},0\n" for t, users, rolling, total in rows)


def test_live_rps_is_counted_between_rows_and_reaches_zero_when_the_users_stop(tmp_path, monkeypatch):
    _history(tmp_path, [(100, 32, 0.0, 0), (101, 32, 120.0, 250), (102, 32, 125.0, 500)])
    state = LiveState(tmp_path).update()
    assert state.rps == 250.0 and state.users == 32
    # Users down to 0: Locust's own rolling mean keeps its last value; no request was made.
    _history(tmp_path, [(103, 0, 125.0, 500), (104, 0, 125.0, 500)])
    assert state.update().rps == 0.0 and state.users == 0
    # Locust gone (a headless run quits): no new row, the last one says 32 users.
    _history(tmp_path, [(105, 32, 125.0, 750)])
    assert state.update().users == 32
    now = live_state.time.monotonic()
    monkeypatch.setattr(live_state.time, "monotonic", lambda: now + live_state.STALE_AFTER_S + 1)
    assert state.rps == 0.0 and state.users == 0


def _progress(tmp_path: Path, *, elapsed: float, closes_after_s: float = 0.0) -> Progress:
    config = RunConfig(duration=15, quiet_seconds=5, burst_seconds=5, results_dir=tmp_path)
    progress = Progress(tmp_path, config=config, limits=ServerLimits(max_connections=40), echo=print,
                        terminal=False, closes_after_s=closes_after_s)
    progress.started -= elapsed
    return progress


def test_the_clock_stops_at_the_total_and_counts_down_the_web_uis_close(tmp_path):
    assert "  7/15 s" in _progress(tmp_path, elapsed=7.2).line()
    ended = _progress(tmp_path, elapsed=16.4).line()
    assert "[ending]" in ended and "15/15 s" in ended and "16/15" not in ended
    closing = _progress(tmp_path, elapsed=25.2, closes_after_s=30).line()
    assert "[closing]" in closing and "15/15 s, web UI closes in 20 s" in closing


def test_one_budget_word_per_number(tmp_path):
    line = _progress(tmp_path, elapsed=1).line()
    assert "/ budget 33 (pools 32 + 1 harness) / usable 37" in line
    config = RunConfig(other_clients=3, results_dir=tmp_path)
    with_others = Progress(tmp_path, config=config, limits=ServerLimits(max_connections=60), echo=print,
                           terminal=False).line()
    assert "budget 36 (pools 32 + 1 harness + 3 other clients)" in with_others


def test_behind_pgbouncer_the_live_line_the_web_ui_and_the_last_line_count_one_server_side_budget(tmp_path):
    """The live figures are the server's connections: behind PgBouncer its server pools (+ the harness), never the
    app's pools, which are PgBouncer's clients; the same words as the run's last line."""
    config = RunConfig(pgbouncer="transaction", pgbouncer_pool_size=4, workers=2, max_size=4, results_dir=tmp_path)
    limits = ServerLimits(max_connections=40)
    expected = "budget 5 (PgBouncer server pools 4 + 1 harness)"
    line = Progress(tmp_path, config=config, limits=limits, echo=print, terminal=False).line()
    assert f"/ {expected} / usable 37" in line
    pooler = config.pooler_budget.as_dict(limits)
    write_json(tmp_path / MANIFEST, {"server": limits.as_dict(), "budget": config.budget.as_dict(),
                                     "pgbouncer": {"budget": pooler}})
    web = read_connection_lines(tmp_path)
    assert (web.budget, web.pools, web.budget_text()) == (5, 4, expected)
    assert {"figure": "of which the PgBouncer server pools", "value": "4"} in table_rows(LiveState(tmp_path), web)
    assert f"({expected}, usable 37" in summary_lines({
        "budget": config.budget.as_dict(), "server": limits.as_dict(),
        "pgbouncer": {"budget": pooler, "peak_clients": 8, "peak_clients_waiting": 0, "max_wait_s": 0.0,
                      "peak_server_connections": 4},
        "peak_connections": 4, "errors_by_class": {}, "verdict": "pass", "reasons": [],
        "requests": {"total": 1, "failures": 0, "rps": 1.0, "p50_ms": 1, "p95_ms": 1, "p99_ms": 1}})[0]
