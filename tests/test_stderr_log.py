"""The stderr log format read with its log_line_prefix, and the checks on a --server-log before a run."""

from pathlib import Path

import pytest

from loadtests.errors import Refused
from loadtests.run.preflight import check_server_log
from loadtests.sources.server_log import (
    CSVLOG,
    JSONLOG,
    STDERR,
    copy_window,
    counts_over_time,
    find_log,
    log_format,
    logs_sessions,
    parse_time,
    peak,
    read_records,
    rebuild_sessions,
    stderr_problem,
    stderr_records,
)
from loadtests.sources.stderr_log import PrefixError, prefix_pattern

PREFIX = "%m [%p] %q%u@%d %a "
# Recorded from PostgreSQL 18 with log_destination=stderr, log_connections=on, log_disconnections=on.
RECORDED = """\
2026-11-22 01:35:05.938 UTC [29829] LOG:  database system is ready to accept connections
2026-11-22 01:35:06.093 UTC [29842] [unknown]@[unknown] [unknown] LOG:  connection received: host=127.0.0.1 port=46618
2026-11-22 01:35:06.096 UTC [29842] app@poolcheck [unknown] LOG:  connection authenticated: identity="app" method=scram-sha-256 (pg_hba.conf:119)
2026-11-22 01:35:06.096 UTC [29842] app@poolcheck [unknown] LOG:  connection authorized: user=app database=poolcheck application_name=my app
2026-11-22 01:35:06.106 UTC [29843] [unknown]@[unknown] [unknown] LOG:  connection received: host=127.0.0.1 port=46634
2026-11-22 01:35:06.111 UTC [29843] app@poolcheck [unknown] LOG:  connection authorized: user=app database=poolcheck
2026-11-22 01:35:06.120 UTC [29843] app@poolcheck [unknown] ERROR:  relation "nope" does not exist at character 15
2026-11-22 01:35:06.120 UTC [29843] app@poolcheck [unknown] STATEMENT:  SELECT * FROM nope
\tWHERE a LOG:  b
2026-11-22 01:35:06.150 UTC [29844] [unknown]@[unknown] [unknown] LOG:  connection received: host=127.0.0.1 port=46640
2026-11-22 01:35:06.152 UTC [29844] app@poolcheck [unknown] FATAL:  sorry, too many clients already
2026-11-22 01:35:06.200 UTC [29843] app@poolcheck [unknown] LOG:  disconnection: session time: 0:00:00.094 user=app database=poolcheck host=127.0.0.1 port=46634
2026-11-22 01:35:06.274 UTC [29842] app@poolcheck my app LOG:  disconnection: session time: 0:00:00.181 user=app database=poolcheck host=127.0.0.1 port=46618
2026-11-22 01:35:07.000 UTC [29811] app@poolcheck pool LOG:  disconnection: session time: 0:00:02.500 user=app database=poolcheck host=127.0.0.1 port=46000
"""


def _sessions(text: str, prefix: str = PREFIX):
    return rebuild_sessions(stderr_records(text.splitlines(keepends=True), prefix=prefix))


def test_a_recorded_stderr_log_gives_sessions_refusals_and_peak():
    sessions, refusals = _sessions(RECORDED)
    by_pid = {s.pid: s for s in sessions if not s.refused}
    assert set(by_pid) == {29842, 29843, 29811}
    mine = by_pid[29842]
    assert (mine.user, mine.database, mine.application_name, mine.client_addr) == ("app", "poolcheck", "my app", "127.0.0.1")
    assert mine.start == parse_time("2026-11-22 01:35:06.096 UTC") and mine.end == parse_time("2026-11-22 01:35:06.274 UTC")
    # No %c: the id is PostgreSQL's own (start second and pid in hex), so it joins pg_stat_activity's.
    assert mine.session_id == f"{int(parse_time('2026-11-22 01:35:06.093 UTC')):x}.{29842:x}"
    # Begun before the log: counted from its disconnection's time less its session time.
    assert by_pid[29811].start == pytest.approx(parse_time("2026-11-22 01:35:04.500 UTC"))
    assert by_pid[29811].session_id == f"{int(parse_time('2026-11-22 01:35:04.500 UTC')):x}.{29811:x}"
    assert by_pid[29843].application_name == ""  # "[unknown]" is the prefix's word for none
    assert [r.message for r in refusals] == ["sorry, too many clients already"]
    assert peak(counts_over_time(sessions))[0] == 3


def test_the_same_activity_in_jsonlog_gives_the_same_sessions(tmp_path: Path):
    log = tmp_path / "postgresql.log"
    log.write_text(RECORDED)
    assert log_format(log) == STDERR
    copied = copy_window(log, tmp_path / "run" / "postgres", start=0, end=2e9, prefix=PREFIX)
    kept = find_log(tmp_path / "run")
    assert kept.name == "postgresql.json" and log_format(kept) == JSONLOG
    assert copied == len([line for line in RECORDED.splitlines() if not line.startswith("\t")])
    assert rebuild_sessions(read_records(kept)) == _sessions(RECORDED)


@pytest.mark.parametrize("prefix, line, expected", [
    # Amazon RDS's default: %r is "host(port)".
    ("%t:%r:%u@%d:[%p]:", "2026-01-02 03:04:05 UTC:10.0.0.7(51234):app@shop:[4242]:LOG:  connection authorized: user=app database=shop",
     {"pid": 4242, "client_addr": "10.0.0.7", "user": "app", "database": "shop"}),
    ("%m %c %l %e %h %-10u ", "2026-01-02 03:04:05.123 +02 6b0.a1 7 00000 [local] app        LOG:  connection authorized: user=app database=shop",
     {"session_id": "6b0.a1", "client_addr": "[local]", "user": "app", "at": parse_time("2026-01-02 01:04:05.123 UTC")}),
    ("%n|%p|%%|%Z|", "1767323045.500|77|%||LOG:  connection authorized: user=u database=d",
     {"pid": 77, "user": "u", "database": "d", "at": 1767323045.5}),
])
def test_prefix_escapes(prefix, line, expected):
    record = next(stderr_records([line], prefix=prefix))
    assert {name: getattr(record, name) for name in expected} == expected


def test_a_non_session_line_stops_at_q():
    line = "2026-01-02 03:04:05.000 UTC [12] LOG:  checkpoint starting: time"
    assert prefix_pattern(PREFIX).match(line)["error_severity"] == "LOG"


@pytest.mark.parametrize("prefix, problem", [("[%p] ", "no time"), ("%m ", "neither %c nor %p"), ("", "no time")])
def test_prefixes_that_cannot_give_sessions(prefix, problem):
    with pytest.raises(PrefixError, match=problem):
        prefix_pattern(prefix)


def test_log_format_edge_cases(tmp_path: Path):
    cases = {
        "json": ('{"timestamp":"2026-01-02 03:04:05.678 UTC"}\n', JSONLOG),
        "csv": ('2026-01-02 03:04:05.678 UTC,"app","db",1,"",6b0.1,1,"",,,0,LOG,00000,"x"\n', CSVLOG),
        "stderr": ("2026-01-02 03:04:05.678 UTC [42] LOG:  x\n", STDERR),
        "empty": ("", CSVLOG),  # a new log may still fill up: nothing to tell yet
        "text": ("hello, world\n", STDERR),
    }
    for name, (text, kind) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert log_format(path) == kind, name
    assert stderr_problem(tmp_path / "stderr", prefix=PREFIX) is None
    assert "log_line_prefix '%t %p '" in stderr_problem(tmp_path / "stderr", prefix="%t %p ")
    assert "no line of it" in stderr_problem(tmp_path / "text", prefix=PREFIX)
    assert "no time" in stderr_problem(tmp_path / "text", prefix="%p")
    assert stderr_problem(tmp_path / "empty", prefix=PREFIX) is None
    with pytest.raises(ValueError, match="log_line_prefix"):
        read_records(tmp_path / "stderr")


ON = {"log_connections": "on", "log_disconnections": "on", "log_line_prefix": PREFIX}


@pytest.mark.parametrize("value, logs", [("on", True), ("off", False), ("", False), ("receipt", False),
                                         ("receipt,authorization", True), ("all", True)])
def test_connection_logging_settings(value, logs):
    assert logs_sessions({"log_connections": value}, "log_connections") is logs


def test_a_server_log_that_cannot_give_exact_counts_is_refused(tmp_path: Path):
    log = tmp_path / "postgresql.log"
    log.write_text(RECORDED)
    check_server_log(log, settings=ON, prefix=None)  # the server's own prefix, read through --dsn
    with pytest.raises(Refused, match="log_connections and log_disconnections off"):
        check_server_log(log, settings={**ON, "log_connections": "off", "log_disconnections": "off"}, prefix=None)
    with pytest.raises(Refused, match="log_disconnections off"):
        check_server_log(log, settings={**ON, "log_disconnections": "off"}, prefix="%m [%p] ")
    with pytest.raises(Refused, match="--log-line-prefix"):
        check_server_log(log, settings={"log_connections": "on", "log_disconnections": "on"}, prefix=None)
    with pytest.raises(Refused, match="no line of it starts with log_line_prefix '%t %p '"):
        check_server_log(log, settings={**ON, "log_line_prefix": "%t %p "}, prefix=None)


@pytest.mark.parametrize("value", ["C", "POSIX", "en_US.UTF-8", "C.UTF-8", ""])
def test_english_server_messages_are_read(value, tmp_path: Path):
    log = tmp_path / "postgresql.log"
    log.write_text(RECORDED)
    check_server_log(log, settings={**ON, "lc_messages": value}, prefix=None)


def test_a_server_writing_its_messages_in_another_language_is_refused(tmp_path: Path):
    # "Verbindung autorisiert" is not "connection authorized": every session would go uncounted.
    log = tmp_path / "postgresql.log"
    log.write_text(RECORDED)
    with pytest.raises(Refused, match="lc_messages 'de_DE.UTF-8'.*set lc_messages = 'C'"):
        check_server_log(log, settings={**ON, "lc_messages": "de_DE.UTF-8"}, prefix=None)

