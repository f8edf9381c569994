"""The proxy figures from hand-written events, the events file read back, and the relay
without a database: bad input, a taken port, a refusing upstream."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from psycopg.conninfo import conninfo_to_dict

from loadtests.analysis.proxy_cuts import proxy_figures
from loadtests.proxy.events import EventLog, listening_port, read_events
from loadtests.run.embedded_server import free_port
from loadtests.run.proxy_process import app_dsn_through, proxy_process, relay_port, upstream_of
from loadtests.run_folder import PROXY_EVENTS_JSONL


def _silent_run() -> list[dict]:
    """1 used steadily; 2 cut idle, then hung 2.5 s; 3 cut mid-request; 5 cut idle, its backend ended by the
    server; 6 still open (never cut) when the relay stopped; 4 never reached the server."""
    return [
        {"event": "listening", "t": 0, "port": 5000, "mode": "silent", "idle_cut_s": 2.0},
        {"event": "open", "t": 1, "conn": 1},
        {"event": "open", "t": 1, "conn": 2},
        {"event": "open", "t": 1, "conn": 3},
        {"event": "open", "t": 1, "conn": 5},
        {"event": "open", "t": 1, "conn": 6},
        {"event": "upstream_failed", "t": 1, "conn": 4, "error": "refused"},
        {"event": "cut", "t": 3, "conn": 2, "mode": "silent", "idle_s": 2.01, "last_direction": "down"},
        {"event": "cut", "t": 4, "conn": 3, "mode": "silent", "idle_s": 2.3, "last_direction": "up"},
        {"event": "cut", "t": 4, "conn": 5, "mode": "silent", "idle_s": 2.0, "last_direction": "down"},
        {"event": "hang", "t": 5, "conn": 2, "bytes": 14},
        {"event": "end", "t": 6, "conn": 5, "side": "server", "reason": "eof", "max_idle_s": 2.0},
        {"event": "end", "t": 7.5, "conn": 2, "side": "client", "reason": "client_timeout", "max_idle_s": 2.01, "hang_s": 2.5},
        {"event": "end", "t": 8, "conn": 1, "side": "client", "reason": "eof", "max_idle_s": 1.4},
        {"event": "end", "t": 8, "conn": 1, "side": "server", "reason": "relay", "max_idle_s": 1.4},
        {"event": "end", "t": 9, "conn": 2, "side": "server", "reason": "stopped", "max_idle_s": 2.01},
        {"event": "end", "t": 9, "conn": 3, "side": "client", "reason": "stopped", "max_idle_s": 2.3},
        {"event": "end", "t": 9, "conn": 3, "side": "server", "reason": "eof", "max_idle_s": 2.3},
        {"event": "end", "t": 9, "conn": 5, "side": "client", "reason": "stopped", "max_idle_s": 2.0},
        {"event": "end", "t": 9, "conn": 6, "side": "client", "reason": "stopped", "max_idle_s": 0.5},
        {"event": "end", "t": 9, "conn": 6, "side": "server", "reason": "stopped", "max_idle_s": 0.5},
        {"event": "stopped", "t": 9, "reason": "signal", "open": 4},
    ]


def test_figures_of_a_silent_run() -> None:
    figures = proxy_figures(_silent_run())
    assert figures == {
        "mode": "silent",
        "idle_cut_s": 2.0,
        "connections": 5,
        "upstream_failures": 1,
        "cuts": {"reset": 0, "silent": 3},
        "cut_idle": 2,
        "cut_mid_request": 1,
        "longest_idle_s": 2.3,
        "longest_idle_uncut_s": 1.4,
        "hung_requests": 1,
        "hang_max_s": 2.5,
        "hang_median_s": 2.5,
        "hangs_ended_by": {"client_timeout": 1},
        "backends_left_open": 1,
        "backend_after_cut_max_s": 6,  # conn 2: cut at 3, its backend still there when the relay stopped at 9
        "complete": True,
    }


def test_figures_of_no_events() -> None:
    figures = proxy_figures([])
    assert figures["connections"] == 0 and figures["cuts"] == {"reset": 0, "silent": 0}
    assert figures["longest_idle_s"] is None and figures["hang_median_s"] is None
    assert figures["complete"] is False


def test_events_read_back_without_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / PROXY_EVENTS_JSONL
    log = EventLog(path)
    log.write("listening", port=5123, mode="reset", idle_cut_s=1.0)
    log.write("open", conn=1, client_port=40000)
    log.close()
    assert listening_port(path) == 5123
    with open(path, "a") as f:
        f.write('{"event":"cut","conn"')  # a relay killed mid-write
    assert [e["event"] for e in read_events(path)] == ["listening", "open"]
    assert listening_port(tmp_path / "missing.jsonl") is None


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--upstream", "nohost:", "--idle-cut", "1"], "--upstream must be HOST:PORT"),
        (["--upstream", "127.0.0.1:5432", "--idle-cut", "0"], "--idle-cut must be positive"),
        (["--upstream", "127.0.0.1:5432", "--idle-cut", "1", "--client-timeout", "5"], "applies to --mode silent only"),
        (["--upstream", "127.0.0.1:5432", "--idle-cut", "1", "--mode", "silent", "--client-timeout", "-1"],
         "--client-timeout must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_started(tmp_path: Path, args: list[str], says: str) -> None:
    # --max-seconds: were the input accepted after all, the relay would end soon, and the test fail.
    argv = [sys.executable, "-m", "loadtests.proxy", "--out", str(tmp_path), "--max-seconds", "2", *args]
    done = subprocess.run(argv,
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and says in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / PROXY_EVENTS_JSONL).exists()


def test_a_taken_port_is_one_line_exit_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "loadtests.proxy", "--out", str(tmp_path), "--upstream", "127.0.0.1:5432",
             "--idle-cut", "1", "--listen-port", str(port)],
            capture_output=True, text=True, timeout=30,
        )
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert done.stderr.count("\n") == 1 and not (tmp_path / PROXY_EVENTS_JSONL).exists()


def test_a_server_that_refuses_is_an_upstream_failure_and_a_reset_client(tmp_path: Path) -> None:
    closed_port = free_port()  # nothing listens there
    with proxy_process(run_dir=tmp_path, upstream=("127.0.0.1", closed_port), idle_cut=5, mode="reset", max_seconds=30):
        with socket.create_connection(("127.0.0.1", relay_port(tmp_path))) as sock:
            with pytest.raises(ConnectionResetError):
                sock.recv(1)
    events = read_events(tmp_path / PROXY_EVENTS_JSONL)
    assert [e["event"] for e in events] == ["listening", "open", "upstream_failed", "stopped"]
    assert proxy_figures(events)["upstream_failures"] == 1


@pytest.mark.parametrize(
    ("dsn", "through"),
    [
        ("postgresql://app:s3cr@t@db.example:6432/shop?sslmode=disable",
         "postgresql://app:s3cr@t@127.0.0.1:7000/shop?sslmode=disable"),
        ("postgres://db.example/shop", "postgres://127.0.0.1:7000/shop"),
        ("host=db.example port=6432 dbname=shop user=app", "host=127.0.0.1 port=7000 dbname=shop user=app"),
    ],
)
def test_the_app_dsn_points_at_the_relay_in_the_form_it_came(dsn: str, through: str) -> None:
    assert conninfo_to_dict(app_dsn_through(dsn, 7000)) == conninfo_to_dict(through)
    assert ("://" in app_dsn_through(dsn, 7000)) == ("://" in dsn)  # a URL stays a URL


def test_the_upstream_is_the_dsn_host_and_port() -> None:
    assert upstream_of("postgresql://app:pw@db.example:6432/shop") == ("db.example", 6432)
    assert upstream_of("dbname=shop") == ("127.0.0.1", 5432)
    with pytest.raises(ValueError, match="several hosts"):
        upstream_of("host=a,b dbname=shop")
