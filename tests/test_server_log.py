"""Exact connection counts from the server's log: the parser on small samples, then a real server."""

import json
import shutil
import time

import psycopg
import pytest

from conftest import poolcheck
from loadtests.analysis.exact_counts import is_harness
from loadtests.run.processes import wait_until
from loadtests.run.embedded_server import embedded_server
from loadtests.sources.server_log import (
    copy_window,
    counts_over_time,
    csvlog_records,
    find_log,
    jsonlog_records,
    parse_time,
    peak,
    read_records,
    rebuild_sessions,
)
from loadtests.analysis.summary import summarize


def _line(at: str, session: str, message: str, *, severity: str = "LOG", app: str = "", user: str = "app") -> str:
    record = {
        "timestamp": f"2026-01-02 03:04:{at} UTC",
        "user": user,
        "pid": int(session, 16),
        "session_id": f"6b0.{session}",
        "session_start": "2026-01-02 03:04:00 UTC",
        "error_severity": severity,
        "message": message,
        "backend_type": "client backend",
    }
    if app:
        record["application_name"] = app
    return json.dumps(record)


def _authorized(at: str, session: str, app: str = "poolcheck-app:1", user: str = "app") -> str:
    return _line(at, session, f"connection authorized: user={user} database=poolcheck application_name={app}", user=user)


def _gone(at: str, session: str, app: str = "poolcheck-app:1") -> str:
    return _line(at, session, "disconnection: session time: 0:00:01.000 user=app database=poolcheck", app=app)


SAMPLE = [
    _authorized("01.000", "a1"),
    _authorized("01.100", "a2"),
    _authorized("01.200", "a3", app="poolcheck-app:2"),
    _gone("01.250", "a2"),  # a session of 150 ms: between two samples of a 1 s sampler
    _authorized("02.000", "a4"),
    _line("02.001", "a4", "remaining connection slots are reserved for roles with the SUPERUSER attribute", severity="FATAL"),
    _line("02.002", "a5", "sorry, too many clients already", severity="FATAL"),
    _authorized("02.500", "c1", app="poolcheck-collector", user="postgres"),
    _gone("03.000", "a1"),
    '{"timestamp": "2026-01-02 03:04:03.5',  # a torn last line
]


def test_sessions_refusals_and_exact_peak_from_jsonlog():
    sessions, refusals = rebuild_sessions(jsonlog_records(SAMPLE))
    by_id = {s.session_id: s for s in sessions}
    assert len(refusals) == 2
    assert by_id["6b0.a4"].refused and not by_id["6b0.a1"].refused
    assert by_id["6b0.a3"].application_name == "poolcheck-app:2" and by_id["6b0.a3"].end is None
    clients = [s for s in sessions if not is_harness(s, embedded=True)]
    count, at = peak(counts_over_time(clients))
    # a1, a2, a3 open together; a4 was refused and never counts.
    assert count == 3 and at == parse_time("2026-01-02 03:04:01.200 UTC")
    assert counts_over_time(clients)[-1][1] == 1  # a3 is still open when the log ends


def test_a_disconnection_at_the_same_millisecond_is_counted_out_first():
    lines = [_authorized("01.000", "b1"), _gone("02.000", "b1"), _authorized("02.000", "b2")]
    sessions, _ = rebuild_sessions(jsonlog_records(lines))
    assert peak(counts_over_time(sessions))[0] == 1


def test_a_session_begun_before_the_log_counts_from_its_start():
    sessions, _ = rebuild_sessions(jsonlog_records([_gone("05.000", "d1")]))
    assert len(sessions) == 1 and sessions[0].start == parse_time("2026-01-02 03:04:00 UTC")


def test_a_server_restart_ends_every_session():
    restart = _line("03.000", "0", "all server processes terminated; reinitializing")
    sessions, _ = rebuild_sessions(jsonlog_records([_authorized("01.000", "e1"), restart]))
    assert sessions[0].end == parse_time("2026-01-02 03:04:03.000 UTC")


def test_csvlog_gives_the_same_sessions(tmp_path):
    rows = [
        '2026-01-02 03:04:01.000 UTC,"app","poolcheck",161,"127.0.0.1:5000",6b0.a1,3,"authentication",'
        '2026-01-02 03:04:01 UTC,3/1,0,LOG,00000,"connection authorized: user=app database=poolcheck '
        'application_name=poolcheck-app:1",,,,,,,,,"","client backend",,0',
        '2026-01-02 03:04:02.000 UTC,"app","poolcheck",161,"127.0.0.1:5000",6b0.a1,4,"idle",'
        '2026-01-02 03:04:01 UTC,,0,LOG,00000,"disconnection: session time: 0:00:01.000 user=app database=poolcheck '
        'host=127.0.0.1 port=5000",,,,,,,,,"poolcheck-app:1","client backend",,0',
    ]
    sessions, _ = rebuild_sessions(csvlog_records(rows))
    assert [(s.application_name, s.end - s.start) for s in sessions] == [("poolcheck-app:1", 1.0)]
    log = tmp_path / "server.csv"
    log.write_text("\n".join(rows) + "\n")
    copied = copy_window(log, tmp_path / "run" / "postgres", start=parse_time("2026-01-02 03:04:01.500 UTC"), end=2e9)
    assert copied == 1 and find_log(tmp_path / "run").name == "postgresql.csv"


def test_timestamps_with_offsets_and_ambiguous_zones():
    assert parse_time("2026-01-02 05:04:01.000 +02") == parse_time("2026-01-02 03:04:01.000 UTC")
    with pytest.raises(ValueError, match="log_timezone"):
        parse_time("2026-01-02 03:04:01.000 CET")
    # A whole log in such a zone is an error to report, not lines to skip.
    with pytest.raises(ValueError, match="log_timezone"):
        list(jsonlog_records([_authorized("01.000", "f1").replace(" UTC", " CET")]))


def _open(dsn: str, n: int, name: str) -> list[psycopg.Connection]:
    return [psycopg.connect(dsn, application_name=name, autocommit=True) for _ in range(n)]


def _wait_for_sessions(superuser_dsn: str, expected: int) -> None:
    """Until the server has counted the test's closed sessions out: the next group must not overlap them."""

    def check() -> bool:
        with psycopg.connect(superuser_dsn, autocommit=True) as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'poolcheck-app:%%'"
            return conn.execute(query).fetchone()[0] == expected

    wait_until(check, timeout=10, what=f"{expected} sessions on the server")


@pytest.mark.slow
def test_exact_peak_from_a_real_log_equals_the_tests_own_count(tmp_path):
    """Known pattern: 2 held, a burst to 9 that lasts ~30 ms, 2 refusals at the limit, then small groups."""
    settings = {"max_connections": 12, "superuser_reserved_connections": 3}  # 9 slots for the app role
    with embedded_server(run_dir=tmp_path, settings=settings) as server:
        held = _open(server.app_dsn, 2, "poolcheck-app:1")
        burst = _open(server.app_dsn, 7, "poolcheck-app:2")
        refused = 0
        for _ in range(2):
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(server.app_dsn, application_name="poolcheck-app:3")
            refused += 1
        time.sleep(0.03)  # the burst's length, far under any sample interval (not a wait for anything)
        for conn in burst:
            conn.close()
        _wait_for_sessions(server.superuser_dsn, 2)
        for size in (3, 5, 1):
            group = _open(server.app_dsn, size, "poolcheck-app:4")
            for conn in group:
                conn.close()
            _wait_for_sessions(server.superuser_dsn, 2)
        for conn in held:
            conn.close()
        _wait_for_sessions(server.superuser_dsn, 0)
    truth = 2 + 7
    sessions, refusals = rebuild_sessions(read_records(find_log(tmp_path)))
    clients = [s for s in sessions if not is_harness(s, embedded=True)]
    assert peak(counts_over_time(clients))[0] == truth
    assert len(refusals) == refused
    assert len([s for s in clients if not s.refused]) == 2 + 7 + 3 + 5 + 1
    assert counts_over_time(clients)[-1][1] == 0


@pytest.mark.slow
def test_dsn_with_server_log_gives_exact_figures_and_without_says_sampled_only(tmp_path, results_dir):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 40}) as server:
        log = server.data_dir.parent / "log" / "postgresql.json"  # where the embedded server writes its jsonlog
        run = poolcheck(
            "run", "--dsn", server.superuser_dsn, "--server-log", str(log), "--workers", "2", "--max-size", "3",
            "--duration", "8", "--quiet-seconds", "3", "--burst-seconds", "3", "--burst-users", "8", "--cycles", "1",
            results_dir=results_dir,
        )
    assert run.returncode == 0, run.stdout + run.stderr
    exact = run.json("summary.json")["exact"]
    assert exact["available"] and exact["source"] == "postgres/postgresql.json"
    assert exact["sampled_peak"] <= exact["peak"] <= 2 * 3
    assert "exact peak" in run.stdout
    shutil.rmtree(run.run_dir / "postgres")
    exact = summarize(run.run_dir)["exact"]
    assert not exact["available"] and "--server-log" in exact["reason"]


STDERR_LOG = {"log_destination": "stderr,jsonlog", "log_line_prefix": "%m [%p] %q%u@%d %a "}


@pytest.mark.slow
def test_a_stderr_log_gives_the_sessions_its_jsonlog_gives(tmp_path):
    """The same activity logged twice, stderr with a prefix and jsonlog: the test's own count, from both."""
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20, **STDERR_LOG}) as server:
        held = _open(server.app_dsn, 2, "poolcheck-app:1")
        for size in (6, 3):
            group = _open(server.app_dsn, size, "poolcheck-app:2")
            for conn in group:
                conn.close()
            _wait_for_sessions(server.superuser_dsn, 2)
        for conn in held:
            conn.close()
        _wait_for_sessions(server.superuser_dsn, 0)
    log_dir = tmp_path / "postgres"
    from_stderr, _ = rebuild_sessions(read_records(log_dir / "postgresql.log", prefix=STDERR_LOG["log_line_prefix"]))
    from_json, _ = rebuild_sessions(read_records(log_dir / "postgresql.json"))

    def mine(sessions):
        # Without %c the session id is made from "connection received", which can fall a second after
        # the backend's start: ids may differ at a second's edge (exact_sessions joins by pid and start then).
        return sorted((s.pid, s.start, s.end, s.application_name, s.user) for s in sessions
                      if s.application_name.startswith("poolcheck-app:"))

    assert len(mine(from_stderr)) == 2 + 6 + 3
    assert mine(from_stderr) == mine(from_json)
    clients = [s for s in from_stderr if s.application_name.startswith("poolcheck-app:")]
    assert peak(counts_over_time(clients))[0] == 2 + 6


@pytest.mark.slow
def test_a_run_reads_a_stderr_log_with_the_servers_prefix_and_refuses_one_without_connection_logging(
        tmp_path, results_dir):
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 40, **STDERR_LOG}) as server:
        log = server.data_dir.parent / "log" / "postgresql.log"  # the stderr log; no --log-line-prefix: SHOW's
        run = poolcheck(
            "run", "--dsn", server.superuser_dsn, "--server-log", str(log), "--workers", "2", "--max-size", "3",
            "--duration", "8", "--quiet-seconds", "3", "--burst-seconds", "3", "--burst-users", "8", "--cycles", "1",
            results_dir=results_dir,
        )
        # The server as a session of this DSN sees it: disconnections not logged.
        quiet = server.superuser_dsn + "?options=-c%20log_disconnections%3Doff"
        with psycopg.connect(quiet, autocommit=True) as conn:
            assert conn.execute("SHOW log_disconnections").fetchone()[0] == "off"
        refused = poolcheck("run", "--dsn", quiet, "--server-log", str(log), "--duration", "8", "--quiet-seconds", "3",
                            results_dir=results_dir / "refused")
    assert run.returncode == 0, run.stdout + run.stderr
    exact = run.json("summary.json")["exact"]
    assert exact["available"] and exact["source"] == "postgres/postgresql.json"
    # The test's own count: the server's jsonlog of the same activity, over the run's time.
    sessions, _ = rebuild_sessions(read_records(tmp_path / "postgres" / "postgresql.json"))
    app = [s for s in sessions if s.application_name.startswith("poolcheck-app:")]
    assert app and exact["peak"] == peak(counts_over_time(app))[0]
    assert exact["sampled_peak"] <= exact["peak"] <= 2 * 3
    assert refused.returncode == 2
    assert "log_disconnections off" in refused.stderr and "Traceback" not in refused.stderr
    assert not (results_dir / "refused").exists() or not any((results_dir / "refused").iterdir())
