"""When no sweep cell fits the server directly, the recommendation names the PgBouncer pool size that would."""

from loadtests.budget import ServerLimits
from loadtests.sweep.recommend import Criteria, recommend
from test_recommend import row

LIMITS = ServerLimits(max_connections=40, superuser_reserved_connections=3)  # usable 37, 29 with 20 % headroom


def test_no_cell_fits_directly_names_a_pgbouncer_pool_size():
    rows = [row(4, 8, 100.0), row(8, 8, 120.0)]  # 32 and 64 connections: above 29
    choice = recommend(rows, criteria=Criteria(), limits=LIMITS, other_clients=2)
    assert choice["cell"] is None
    behind = choice["pgbouncer"]
    assert behind["default_pool_size"] == 27  # 29 allowed - 2 other clients
    assert behind["max_client_conn_at_least"] == 64
    assert any("no cell fits the server directly" in r and "--pgbouncer-pool-size 27" in r for r in choice["reasons"])


def test_a_cell_that_fits_directly_needs_no_pgbouncer():
    rows = [row(2, 4, 100.0, failure_ratio=0.5), row(8, 8, 120.0)]  # 8 fits, but fails: not a budget problem
    choice = recommend(rows, criteria=Criteria(), limits=LIMITS)
    assert choice["cell"] is None and "pgbouncer" not in choice


def test_cells_refused_before_running_count_as_not_fitting():
    refused = {**row(8, 8, 0.0), "status": "refused", "refused": "refused: budget 65 does NOT fit"}
    choice = recommend([refused], criteria=Criteria(), limits=LIMITS)
    assert choice["pgbouncer"]["default_pool_size"] == 29
