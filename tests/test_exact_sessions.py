"""The server log's sessions joined with backends.csv: sessions open at the start, attribution, the watch filter."""

import csv
from pathlib import Path

from loadtests.analysis.exact_sessions import attributed_sessions, clamped
from loadtests.sources.attribution import WatchFilter
from loadtests.sources.backends import BACKEND_COLUMNS, read_backends
from loadtests.sources.server_log import Session, counts_over_time, peak

APP = WatchFilter(user="app")


def _backends(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "backends.csv"
    defaults = {"seen_at": "2026-01-02T03:04:00Z", "at_start": 0, "backend_start": "100.0", "user": "app",
                "database": "shop", "application_name": "", "client_addr": "127.0.0.1", "client_port": "5000",
                "watched": 1}
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=BACKEND_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow({**defaults, **row})
    return path


def _session(session_id: str, start: float, end: float | None = None, *, user: str = "app", app: str = "",
             addr: str = "127.0.0.1") -> Session:
    return Session(session_id, int(session_id.split(".")[1], 16), user, app, start, end, database="shop", client_addr=addr)


def test_sessions_open_at_the_start_and_never_logged_are_added_once(tmp_path: Path):
    seen = read_backends(_backends(tmp_path, [
        # opened by the pools before the run; a1 ends during it, a2 and a3 stay open
        {"session_id": "64.a1", "pid": 161, "at_start": 1, "client": "pid:11"},
        {"session_id": "64.a2", "pid": 162, "at_start": 1, "client": "pid:11"},
        {"session_id": "64.a3", "pid": 163, "at_start": 1, "client": "pid:12"},
        # the watch role's own session (the collector's), not watched
        {"session_id": "64.a4", "pid": 164, "at_start": 1, "client": "", "watched": 0, "user": "watcher"},
        # first seen by a later sample
        {"session_id": "6e.b1", "pid": 177, "at_start": 0, "client": "pid:12", "backend_start": "110.0"},
    ]))
    log = [_session("64.a1", 100.0, 115.0), _session("6e.b1", 110.0, 112.0), _session("6f.b2", 111.0, 113.0)]
    joined = {s.session_id: s for s in attributed_sessions(log, seen, watch=APP)}
    assert set(joined) == {"64.a1", "64.a2", "64.a3", "6e.b1", "6f.b2"}
    assert joined["64.a2"].start == 100.0 and joined["64.a2"].end is None
    assert {sid: s.client for sid, s in joined.items()} == {
        "64.a1": "pid:11", "64.a2": "pid:11", "64.a3": "pid:12", "6e.b1": "pid:12",
        "6f.b2": "addr:127.0.0.1",  # never sampled: named by what the log tells
    }
    # Counted from the run's start: 3 open at 105, then b1 and b2 on top.
    steps = counts_over_time(clamped(list(joined.values()), 105.0))
    assert steps[0] == (105.0, 1) and peak(steps) == (5, 111.0)


def test_the_watch_filter_decides_as_it_did_for_the_samples(tmp_path: Path):
    seen = read_backends(_backends(tmp_path, [
        {"session_id": "64.c1", "pid": 193, "client": "", "watched": 0, "user": "watcher"},
    ]))
    log = [_session("64.c1", 100.0, 101.0, user="watcher"), _session("64.c2", 100.0, 101.0, user="watcher"),
           _session("64.c3", 100.0, 101.0, app="api")]
    joined = attributed_sessions(log, seen, watch=APP)
    # c1: the collector said not watched; c2: never sampled, the filter says no; c3: the app's, named by its name.
    assert [(s.session_id, s.client) for s in joined] == [("64.c3", "api")]


def test_a_session_without_address_or_name_is_named_by_its_role(tmp_path: Path):
    joined = attributed_sessions([_session("64.d1", 100.0, addr="[local]")], {}, watch=APP)
    assert joined[0].client == "user:app@shop"


def test_backends_csv_torn_or_missing(tmp_path: Path):
    path = _backends(tmp_path, [{"session_id": "64.e1", "pid": 229, "at_start": 1, "client": "pid:1"}])
    with open(path, "a") as f:
        f.write("2026-01-02T03:04:01Z,1,64.e2,not-a-pid")  # a torn last line
    assert list(read_backends(path)) == ["64.e1"]
    assert read_backends(tmp_path / "absent.csv") == {}
    assert clamped([_session("64.e1", 90.0)], None)[0].start == 90.0


def test_a_backend_still_authenticating_is_recorded_once_it_has_its_user(tmp_path: Path):
    """Seen before its authorization, a backend has no user: recorded then, the watch filter would lose it for good."""
    import io

    from loadtests.sources.attribution import Backend
    from loadtests.sources.collector import Collector

    collector = Collector(dsn="postgresql://", out_dir=tmp_path, interval=1.0, max_seconds=1.0, watch=APP)
    out = io.StringIO()
    collector._backends = (csv.writer(out), out)
    authenticating = Backend("", "", "127.0.0.1", 5000, "", "", 0.01, None, pid=395, backend_start=100.3)
    authorized = Backend("idle", "", "127.0.0.1", 5000, "app", "shop", 0.5, 0.1, pid=395, backend_start=100.3)
    collector._record_new([authenticating], {}, seen_at=100.35)
    collector._record_new([authorized], {authorized.session_id: "pid:12"}, seen_at=101.0)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert [(row[2], row[5], row[10], row[11]) for row in rows] == [("64.18b", "app", "pid:12", "1")]


def test_a_session_whose_id_fell_a_second_late_joins_by_pid_and_start(tmp_path: Path):
    """A stderr log without %c: the id from "connection received" at 101.004 for a backend started at 100.998."""
    seen = read_backends(_backends(tmp_path, [
        {"session_id": "64.a1", "pid": 161, "at_start": 1, "client": "pid:11", "backend_start": "100.998"},
    ]))
    log = [_session("65.a1", 101.004, 103.0)]
    joined = attributed_sessions(log, seen, watch=WatchFilter(user="someone-else"))
    # Joined: the collector's client and watch decision, and not added a second time as open at the start.
    assert [(s.session_id, s.client) for s in joined] == [("65.a1", "pid:11")]
