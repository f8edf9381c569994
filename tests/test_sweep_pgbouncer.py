"""A sweep behind PgBouncer varies its default_pool_size: the cells, their names, the refusals, the table, the choice."""

import pytest

from loadtests.config import RunConfig
from loadtests.errors import Refused
from loadtests.sweep.recommend import Criteria, recommend
from loadtests.sweep.runner import plan_cells
from loadtests.sweep.table import cell_row, table_rows, table_text

# usable 37 - 1 (the collector) = the server side's room: default_pool_size 37 does not fit
BASE = dict(pgbouncer="transaction", pgbouncer_max_client_conn=200, max_connections=40, duration=20.0)


def _cells(**axes):
    return plan_cells(RunConfig(**BASE), pool_kinds=["async"], **axes)


def test_each_pgbouncer_pool_size_is_a_cell_named_by_it():
    cells = _cells(workers=[4], max_sizes=[8], pgbouncer_pool_sizes=[2, 4])
    assert [cell.key for cell in cells] == ["async-w4-m8-p2", "async-w4-m8-p4"]
    assert [cell.config.pooler().default_pool_size for cell in cells] == [2, 4]
    record = cells[1].record()
    assert record["pgbouncer_pool_size"] == 4
    assert record["pgbouncer"]["server_pools"] == 4
    # 4 workers x 8 = 32 client connections; behind PgBouncer the server side is 4 + the collector
    assert record["fits"] is True and cells[1].refused is None


def test_the_server_side_decides_the_refusal_not_the_direct_budget():
    # 8 workers x 8 = 64 clients: over 37 usable directly, fine behind PgBouncer; default_pool_size 37 (+ the collector) is not
    cells = _cells(workers=[8], max_sizes=[8], pgbouncer_pool_sizes=[4, 37])
    ran, refused = cells
    assert ran.refused is None
    assert refused.refused is not None and "PgBouncer server pools" in refused.refused
    assert refused.record()["fits"] is False


def test_too_many_clients_for_max_client_conn_are_refused():
    cells = plan_cells(RunConfig(**{**BASE, "pgbouncer_max_client_conn": 20}), pool_kinds=["async"], workers=[4],
                       max_sizes=[8], pgbouncer_pool_sizes=[4])
    assert "PgBouncer clients" in cells[0].refused


def test_without_pgbouncer_the_axis_is_refused_in_one_line():
    with pytest.raises(Refused, match="needs --pgbouncer"):
        plan_cells(RunConfig(max_connections=40, duration=20.0), pool_kinds=["async"], workers=[1], max_sizes=[2],
                   pgbouncer_pool_sizes=[2])


def test_out_of_range_pool_size_is_refused():
    with pytest.raises(Refused, match="pgbouncer_pool_size|pgbouncer-pool-size"):
        _cells(workers=[1], max_sizes=[2], pgbouncer_pool_sizes=[0])


def _summary_row(cell, *, rps, peak_server):
    run = {
        "verdict": "pass", "requests": {"rps": rps, "p95_ms": 50.0, "p99_ms": 80.0, "failures": 0, "failure_ratio": 0.0},
        "peak_connections": peak_server + 2, "pgbouncer": {"peak_server_connections": peak_server},
    }
    return cell_row({**cell.record(), "runs": [{"run_dir": cell.key}]}, [run])


def test_table_shows_the_server_side_and_the_choice_ranks_on_it():
    cells = _cells(workers=[4], max_sizes=[8], pgbouncer_pool_sizes=[2, 4, 8])
    rows = [_summary_row(cells[0], rps=60.0, peak_server=2), _summary_row(cells[1], rps=99.0, peak_server=4),
            _summary_row(cells[2], rps=100.0, peak_server=7)]
    limits = RunConfig(**BASE).embedded_limits()
    choice = recommend(rows, criteria=Criteria(), limits=limits)
    # Every cell has 32 client connections: the fewest server connections within 5 % of the best wins.
    assert choice["cell"] == "async-w4-m8-p4" and choice["server_connections"] == 4
    assert any("4 PgBouncer's server connections, the fewest" in r for r in choice["reasons"])
    for r in rows:
        r["recommended"] = r["key"] == choice["cell"]
    summary = {"sweep_id": "s", "rows": rows}
    assert "pgb pool" in table_text(summary)
    chosen = table_rows(summary)[1]
    assert chosen[-1] == "RECOMMENDED"
    # default_pool_size 4; 4 server connections seen of 4 + the collector; then the app's 32 connections to PgBouncer
    assert chosen[11:14] == ["4", "4 / 5", "32 / 33"]


def test_grid_edges_behind_pgbouncer_are_each_levels_own():
    # 4 workers x max_size 8 = 32 of PgBouncer's 200 client slots; the server side is default_pool_size 8 + the
    # collector of 29 usable with 20 % free. Directly, 4 x 12 = 48 would not fit the server: behind PgBouncer it does.
    cells = _cells(workers=[4], max_sizes=[4, 8], pgbouncer_pool_sizes=[4, 8])
    rows = [_summary_row(cell, rps=50.0 + 10 * n, peak_server=cell.config.pgbouncer_pool_size) for n, cell in enumerate(cells)]
    limits = RunConfig(**BASE).embedded_limits()
    axes = {"workers": [4], "max_size": [4, 8], "pgbouncer_pool_size": [4, 8]}
    choice = recommend(rows, criteria=Criteria(), limits=limits, axes=axes)
    assert choice["cell"] == "async-w4-m8-p8"
    reasons = "\n".join(choice["reasons"])
    assert "on the edge of the grid: max_size 8 is its largest, and the best may lie beyond it; try --max-size 8,12,16" in reasons
    assert ("on the edge of the grid: default_pool_size 8 is its largest, and the best may lie beyond it;"
            " try --pgbouncer-pool-size 8,12,16") in reasons
    assert "the edge is" not in reasons
    # A max_client_conn that 4 x 12 would overflow: that edge is PgBouncer's.
    tight = [{**row, "max_client_conn": 40} for row in rows]
    reasons = "\n".join(recommend(tight, criteria=Criteria(), limits=limits, axes=axes)["reasons"])
    assert "no larger max_size stays within max_client_conn 40 with workers 4: the edge is PgBouncer's max_client_conn" in reasons
