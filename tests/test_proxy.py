"""The cloud-proxy emulator, a real process in front of the real embedded PostgreSQL.

Each test starts its own relay (its own proxy_events.jsonl) and counts for
itself what the relay should have seen; the server's own view
(pg_stat_activity) says whether a cut backend went away.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from loadtests.analysis.advice.proxy_rules import dead_connections_survived
from loadtests.analysis.proxy_cuts import proxy_figures
from loadtests.proxy.events import read_events
from loadtests.run.embedded_server import ServerInfo, embedded_server
from loadtests.run.processes import ManagedProcess, wait_until
from loadtests.run.proxy_process import app_dsn_through, proxy_process, relay_port, upstream_of
from loadtests.run_folder import PROXY_EVENTS_JSONL

# A hang the relay fails to end must fail the test, not stall the suite.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(60), pytest.mark.xdist_group("test_proxy")]

CLOSED = "server closed the connection unexpectedly"  # libpq's words for a RST after an idle cut


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    with embedded_server(run_dir=tmp_path_factory.mktemp("proxy-server"), settings={"max_connections": 20}) as info:
        yield info


class Relay:
    def __init__(self, run_dir: Path, dsn: str) -> None:
        self.run_dir = run_dir
        self.dsn = dsn
        self.process: ManagedProcess | None = None

    def events(self, kind: str | None = None) -> list[dict]:
        return [e for e in read_events(self.run_dir / PROXY_EVENTS_JSONL) if kind is None or e["event"] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 10) -> None:
        wait_until(lambda: len(self.events(kind)) >= count, timeout=timeout, what=f"{count} '{kind}' events")


@contextmanager
def relay(tmp_path: Path, server: ServerInfo, *, mode: str, idle_cut: float, app: str,
          client_timeout: float | None = None, max_seconds: float = 120) -> Iterator[Relay]:
    process = proxy_process(
        run_dir=tmp_path, upstream=upstream_of(server.app_dsn), idle_cut=idle_cut, mode=mode,
        max_seconds=max_seconds, client_timeout=client_timeout,
    )
    with process:
        port = relay_port(tmp_path)
        r = Relay(tmp_path, make_conninfo(app_dsn_through(server.app_dsn, port), application_name=app))
        r.process = process
        yield r
    assert process.process is not None and process.process.returncode == 0


def backends(server: ServerInfo, app: str) -> int:
    with psycopg.connect(server.superuser_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)).fetchone()
    return row[0] if row else 0


def wait_for_backends(server: ServerInfo, app: str, expected: int) -> None:
    wait_until(lambda: backends(server, app) == expected, timeout=10, what=f"{expected} backends of {app}")


def give_up_after(conn: psycopg.Connection, seconds: float) -> threading.Timer:
    """The app's own timeout: shut the connection's socket down from another thread."""

    def shut() -> None:
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(seconds, shut)
    timer.start()
    return timer


def test_reset_cut_fails_the_next_query_at_once_and_ends_the_backend(tmp_path, server):
    with relay(tmp_path, server, mode="reset", idle_cut=1.0, app="reset-query") as r:
        conn = psycopg.connect(r.dsn, autocommit=True)
        conn.execute("SELECT 1")
        r.wait_for("cut")
        wait_for_backends(server, "reset-query", 0)  # the server side got its RST too
        t0 = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match=CLOSED):
            conn.execute("SELECT 1")
        failed_after = time.monotonic() - t0
        conn.close()
    assert failed_after < 0.5
    (cut,) = r.events("cut")
    assert cut["mode"] == "reset" and 1.0 <= cut["idle_s"] < 1.5 and cut["last_direction"] == "down"
    assert len(r.events("open")) == 1  # the test opened one connection
    assert sorted((e["side"], e["reason"]) for e in r.events("end")) == [("client", "cut"), ("server", "cut")]
    print(f"reset: the next query failed after {failed_after * 1000:.1f} ms")


def test_reset_reaches_the_client_as_a_rst_not_a_fin(tmp_path, server):
    with relay(tmp_path, server, mode="reset", idle_cut=1.0, app="reset-raw") as r:
        with socket.create_connection(("127.0.0.1", relay_port(tmp_path))) as sock:
            r.wait_for("cut")
            with pytest.raises(ConnectionResetError):
                sock.recv(1)  # a FIN would read b""


def test_silent_cut_hangs_the_next_query_until_the_client_gives_up(tmp_path, server):
    # libpq's own timeouts, which end the hang behind a real load balancer, cannot fire here:
    # the relay's kernel acknowledges the query (loadtests/proxy/relay.py).
    kernel_timeouts = "tcp_user_timeout=500 keepalives_idle=1 keepalives_interval=1 keepalives_count=1"
    app_timeout = 2.0
    with relay(tmp_path, server, mode="silent", idle_cut=1.0, app="silent-query") as r:
        conn = psycopg.connect(f"{r.dsn} {kernel_timeouts}", autocommit=True)
        conn.execute("SELECT 1")
        r.wait_for("cut")
        t0 = time.monotonic()  # before the timer starts: the hang is timed from no later than its start
        timer = give_up_after(conn, app_timeout)
        with pytest.raises(psycopg.OperationalError, match=CLOSED):
            conn.execute("SELECT 1")
        hung = time.monotonic() - t0
        timer.join()
        conn.close()
        assert backends(server, "silent-query") == 1  # nothing reached the server: its backend stays
        r.wait_for("end")  # the client's close, seen by the relay
    wait_for_backends(server, "silent-query", 0)  # gone once the relay stopped
    assert app_timeout <= hung < app_timeout + 0.5
    (hang,) = r.events("hang")
    assert hang["after_cut_s"] < 1.0
    client_end = next(e for e in r.events("end") if e["side"] == "client")
    assert client_end["reason"] == "eof" and abs(client_end["hang_s"] - hung) < 0.3
    figures = proxy_figures(r.events())
    assert figures["cuts"] == {"reset": 0, "silent": 1} and figures["hung_requests"] == 1
    assert figures["backends_left_open"] == 1
    print(f"silent: the next query hung {hung:.2f} s, until the test's own {app_timeout} s timeout")


def test_silent_cut_with_client_timeout_fails_after_that_timeout(tmp_path, server):
    client_timeout = 1.5
    with relay(tmp_path, server, mode="silent", idle_cut=1.0, app="silent-timeout",
               client_timeout=client_timeout) as r:
        conn = psycopg.connect(r.dsn, autocommit=True)
        conn.execute("SELECT 1")
        r.wait_for("cut")
        t0 = time.monotonic()
        timer = give_up_after(conn, client_timeout + 2)  # only if the relay never ends the hang
        with pytest.raises(psycopg.OperationalError, match=CLOSED):
            conn.execute("SELECT 1")
        hung = time.monotonic() - t0
        timer.cancel()
        conn.close()
    assert client_timeout <= hung < client_timeout + 0.5
    client_end = next(e for e in r.events("end") if e["side"] == "client")
    assert client_end["reason"] == "client_timeout"
    print(f"silent, client timeout {client_timeout} s: the next query failed after {hung:.2f} s")


def test_a_connection_in_use_is_never_cut(tmp_path, server):
    idle_cut, pause = 1.0, 0.3
    with relay(tmp_path, server, mode="reset", idle_cut=idle_cut, app="busy") as r:
        conn = psycopg.connect(r.dsn, autocommit=True)
        queries, last, longest_gap = 0, time.monotonic(), 0.0
        end = last + 3 * idle_cut
        while time.monotonic() < end:
            conn.execute("SELECT 1")
            queries += 1
            now = time.monotonic()
            longest_gap, last = max(longest_gap, now - last), now
            time.sleep(pause)  # the app's pace, under the cut (not a wait for anything)
        conn.close()
        r.wait_for("end", 2)
    assert queries >= 8
    assert r.events("cut") == []
    figures = proxy_figures(r.events())
    assert figures["connections"] == 1
    # The relay's longest pause matches the test's own, and stayed under the cut.
    assert abs(figures["longest_idle_uncut_s"] - longest_gap) < 0.1 and figures["longest_idle_uncut_s"] < idle_cut


def _pool(dsn: str, **kwargs) -> ConnectionPool:
    pool = ConnectionPool(dsn, kwargs={"autocommit": True}, min_size=1, max_size=1, timeout=10,
                          max_lifetime=3600, open=False, **kwargs)
    pool.open(wait=True)
    return pool


def test_pool_with_max_lifetime_above_the_cut_hands_out_a_dead_connection(tmp_path, server):
    """The field report: max_lifetime 1 h under a 6 h cut still fails, since it is applied on return only."""
    with relay(tmp_path, server, mode="reset", idle_cut=1.0, app="pool-lifetime") as r:
        with _pool(r.dsn) as pool:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            r.wait_for("cut")
            with pytest.raises(psycopg.OperationalError, match=CLOSED):
                with pool.connection() as conn:
                    conn.execute("SELECT 1")
    assert len(r.events("cut")) == 1


def test_pool_check_replaces_a_reset_connection(tmp_path, server):
    with relay(tmp_path, server, mode="reset", idle_cut=1.0, app="pool-check") as r:
        with _pool(r.dsn, check=ConnectionPool.check_connection) as pool:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            r.wait_for("cut")
            t0 = time.monotonic()
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            waited = time.monotonic() - t0
    assert len(r.events("cut")) == 1
    assert len(r.events("open")) == 2  # the pool's first connection, and the one replacing it
    print(f"reset, check_connection: a new connection after {waited * 1000:.0f} ms")


def test_pool_check_after_a_mass_cut_backs_off_into_pool_timeout(tmp_path, server):
    """Every connection of the pool cut at once: one request meets them in turn, and psycopg waits 0, 1, 2 s ...
    between failed checks, so the 5th is checked only at pool_timeout and the request fails, though the pool
    opened fresh connections within milliseconds of the first failures; the next request gets one at once."""
    dead, pool_timeout = 5, 5.0
    idle_cut = 6.0  # longer than the backoff, so that the fresh connections are not cut while the request waits
    assert dead_connections_survived(pool_timeout) < dead  # the rule the advice states
    with relay(tmp_path, server, mode="reset", idle_cut=idle_cut, app="mass-cut") as r:
        pool = ConnectionPool(r.dsn, kwargs={"autocommit": True}, min_size=dead, max_size=dead, timeout=pool_timeout,
                              max_lifetime=3600, check=ConnectionPool.check_connection, open=False)
        pool.open(wait=True)
        with pool:
            r.wait_for("cut", dead, timeout=idle_cut + 5)
            wait_for_backends(server, "mass-cut", 0)  # the server side of every connection is gone too
            started, t0 = time.time(), time.monotonic()
            with pytest.raises(PoolTimeout):
                pool.getconn()
            waited = time.monotonic() - t0
            t1 = time.monotonic()
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            next_request = time.monotonic() - t1
            lost = pool.get_stats()["connections_lost"]
    fresh = sorted(e["t"] - started for e in r.events("open"))[dead:]
    assert abs(waited - pool_timeout) <= 0.25  # the 5th check came at the deadline: 0 + 1 + 2 + (4 cut short)
    assert lost == dead  # each cut connection failed its check once
    assert len(fresh) == dead and fresh[0] < 0.5  # replaced while the request was still backing off
    assert next_request < 0.5
    assert len(r.events("cut")) == dead  # nothing else was cut
    print(f"{dead} cut connections in a row, check_connection, pool_timeout {pool_timeout:g} s: PoolTimeout after"
          f" {waited:.2f} s; the first fresh connection was open after {fresh[0] * 1000:.0f} ms; the next request"
          f" got one after {next_request * 1000:.0f} ms")


def test_pool_check_waits_out_a_silent_cut(tmp_path, server):
    """The check's own query hangs like any other: it only fails once the client's timeout ends it."""
    client_timeout = 1.5
    with relay(tmp_path, server, mode="silent", idle_cut=1.0, app="pool-check-silent",
               client_timeout=client_timeout) as r:
        with _pool(r.dsn, check=ConnectionPool.check_connection) as pool:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            r.wait_for("cut")
            t0 = time.monotonic()
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            waited = time.monotonic() - t0
    assert client_timeout <= waited < client_timeout + 1.0
    assert len(r.events("hang")) == 1 and len(r.events("open")) == 2
    print(f"silent, check_connection, client timeout {client_timeout} s: a connection after {waited:.2f} s")


def test_pool_max_idle_under_the_cut_closes_connections_before_they_are_cut(tmp_path, server):
    idle_cut, max_idle = 2.5, 0.5
    with relay(tmp_path, server, mode="reset", idle_cut=idle_cut, app="pool-max-idle") as r:
        pool = ConnectionPool(r.dsn, kwargs={"autocommit": True}, min_size=0, max_size=1, timeout=10,
                              max_lifetime=3600, max_idle=max_idle, open=True)
        with pool:
            with pool.connection() as conn:
                conn.execute("SELECT 1")
            used = time.monotonic()
            r.wait_for("end", 2)  # the pool closed its idle connection, the relay passed the close on
            closed_after = time.monotonic() - used
            wait_until(lambda: time.monotonic() > used + idle_cut + 0.3, timeout=idle_cut + 1, what="the cut's time")
            with pool.connection() as conn:
                conn.execute("SELECT 1")
    assert closed_after < idle_cut
    assert r.events("cut") == []
    assert len(r.events("open")) == 2
    assert next(e for e in r.events("end") if e["conn"] == 1 and e["side"] == "client")["reason"] == "eof"
    print(f"max_idle {max_idle} s: the idle connection closed by the pool {closed_after:.2f} s after use")


def test_the_relay_stops_by_itself_after_max_seconds_and_closes_what_it_relays(tmp_path, server):
    with relay(tmp_path, server, mode="reset", idle_cut=60, app="max-seconds", max_seconds=2) as r:
        conn = psycopg.connect(r.dsn, autocommit=True)
        conn.execute("SELECT 1")
        assert r.process is not None and r.process.wait(timeout=10) == 0
        wait_for_backends(server, "max-seconds", 0)
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
        conn.close()
    (stopped,) = r.events("stopped")
    assert stopped["reason"] == "max_seconds" and stopped["open"] == 1
    assert {(e["side"], e["reason"]) for e in r.events("end")} == {("client", "stopped"), ("server", "stopped")}
