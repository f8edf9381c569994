"""PgBouncer's options and the two-level budget: bad input is one line and exit 2, nothing started."""

import pytest

from conftest import assert_refused, poolcheck
from loadtests.budget import Budget, PoolerBudget, ServerLimits, explain_pooler, largest_pooler_pool_size


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--pgbouncer-pool-size", "5"], "--pgbouncer-pool-size"),
        (["--pgbouncer-max-client-conn", "50"], "--pgbouncer-max-client-conn"),
        (["--pgbouncer", "statement"], "--pgbouncer"),
        (["--pgbouncer", "transaction", "--pgbouncer-pool-size", "0"], "--pgbouncer-pool-size"),
        (["--pgbouncer", "transaction", "--pgbouncer-reserve-pool-size", "-1"], "--pgbouncer-reserve-pool-size"),
        (["--pgbouncer", "transaction", "--dsn", "postgresql://u:pw123@127.0.0.1:1/x"], "--pgbouncer"),
        # The server side does not fit: 40 + the collector > 37 usable.
        (["--pgbouncer", "transaction", "--pgbouncer-pool-size", "40"], "--pgbouncer-pool-size"),
        # The clients' side does not fit: 4 workers x 8 + the admin sampler > 20.
        (["--pgbouncer", "transaction", "--pgbouncer-max-client-conn", "20"], "--pgbouncer-max-client-conn"),
        (["--pool-kind", "sqlalchemy", "--min-size", "2"], "--min-size"),
        (["--pool-kind", "sqlalchemy", "--max-idle", "5"], "--max-idle"),
        (["--pool-kind", "sqlalchemy", "--max-waiting", "3"], "--max-waiting"),
    ],
)
def test_bad_pgbouncer_input_is_refused_in_one_line(args, names, results_dir):
    run = poolcheck("run", *args, results_dir=results_dir, timeout=60)
    assert_refused(run.returncode, run.stdout, run.stderr, names=names, results_dir=results_dir)


def test_two_levels_each_checked():
    limits = ServerLimits(max_connections=40, superuser_reserved_connections=3)
    app = Budget(hosts=6, workers=4, max_size=15, extra_clients=1)
    behind = PoolerBudget(clients=app, default_pool_size=30, reserve_pool_size=5, max_client_conn=400,
                          admin_clients=1, server_extra_clients=1)
    assert app.total > limits.usable  # directly: 361 connections for 37 usable
    assert behind.client_total == 361 and behind.clients_fit()
    assert behind.server_total == 36 and behind.server_fits(limits)
    tight = PoolerBudget(clients=app, default_pool_size=33, reserve_pool_size=5, max_client_conn=300, server_extra_clients=1)
    assert not tight.clients_fit() and not tight.server_fits(limits)
    clients, server = explain_pooler(behind, limits)
    assert "= 361" in clients and "max_client_conn 400" in clients and "fits" in clients
    assert "= 36" in server and "usable 37" in server and "NOT" not in server
    assert largest_pooler_pool_size(limits, reserve_pool_size=5, extra_clients=1) == 31
    assert largest_pooler_pool_size(limits, extra_clients=1, headroom_ratio=0.2) == 28


@pytest.mark.parametrize("message", ['prepared statement "_pg3_0" does not exist',
                                     'prepared statement "__asyncpg_stmt_1__" already exists'])
def test_a_lost_prepared_statement_has_its_own_class(message):
    from app.errors import classify
    from loadtests.failure_classes import ERROR_CLASSES, error_class

    assert classify(Exception(message)) == "db_prepared_statement_lost" in ERROR_CLASSES
    assert error_class("CatchResponseError('db_prepared_statement_lost')") == "db_prepared_statement_lost"
    assert classify(Exception('relation "items" does not exist')) == "db_error"
