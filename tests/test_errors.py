import time

import psycopg
from psycopg_pool import PoolTimeout, TooManyRequests

from app.errors import RefusalTracker, classify
from loadtests.run.processes import wait_until


def test_pool_errors():
    assert classify(PoolTimeout("couldn't get a connection after 5.00 sec")) == "pool_timeout"
    assert classify(TooManyRequests("the pool has already 10 requests waiting")) == "pool_queue_full"


def test_pool_timeout_caused_by_the_server_refusing_connections():
    refusal = 'connection failed: FATAL:  sorry, too many clients already'
    assert classify(PoolTimeout("timeout"), refusal=refusal) == "db_too_many_connections"
    reserved = "FATAL:  remaining connection slots are reserved for roles with the SUPERUSER attribute"
    assert classify(PoolTimeout("timeout"), refusal=reserved) == "db_too_many_connections"
    assert classify(PoolTimeout("timeout"), refusal="password authentication failed") == "pool_timeout"


def test_server_errors():
    assert classify(psycopg.OperationalError("FATAL: sorry, too many clients already")) == "db_too_many_connections"
    assert classify(psycopg.OperationalError("the connection is closed")) == "db_connection_closed"
    assert classify(psycopg.OperationalError("server closed the connection unexpectedly")) == "db_connection_closed"
    assert classify(psycopg.errors.AdminShutdown("terminating connection due to administrator command")) == "db_connection_closed"
    assert classify(psycopg.errors.UndefinedTable("relation x does not exist")) == "db_error"


def test_refusals_expire_after_their_window():
    tracker = RefusalTracker(window=0.2)
    tracker.record(psycopg.OperationalError("too many clients already"))
    assert tracker.count == 1
    assert tracker.recent() == "too many clients already"  # within the window
    # Polled, not slept: the refusal must be forgotten once the window has passed.
    wait_until(lambda: time.monotonic() - tracker.at > tracker.window, timeout=5, what="the window to pass", interval=0.01)
    assert tracker.recent() is None
    assert tracker.count == 1  # the count stays: only the message expires
