"""Behind PgBouncer the headroom and the advice speak of its server pools, not the app's direct budget."""

from loadtests.analysis.headroom import headroom_of, headroom_warning
from test_advice import by_rule, recorded


def behind_pgbouncer(summary, *, default_pool_size, reserve_pool_size=0):
    """A recorded run (4 workers x max_size 8 on 37 usable) as if PgBouncer had stood in front of the server."""
    server_pools = default_pool_size + reserve_pool_size
    budget = {"default_pool_size": default_pool_size, "reserve_pool_size": reserve_pool_size, "max_client_conn": 100,
              "pairs": 1, "client_total": 33, "clients_fit": True, "server_pools": server_pools,
              "server_total": server_pools + 1, "server_usable": 37, "server_fits": server_pools + 1 <= 37}
    return {**summary, "pgbouncer": {"pool_mode": "transaction", "budget": budget}}


def test_small_server_pools_keep_the_headroom_though_the_direct_budget_does_not():
    summary, manifest = recorded("default_pools")  # directly 32 of 37: below the 20 % target
    assert headroom_of(summary, other_clients=0).below_target
    pooled = behind_pgbouncer(summary, default_pool_size=4)
    room = headroom_of(pooled, other_clients=0)
    assert (room.deployed, room.free, room.below_target) == (4, 33, False)
    assert "headroom" not in by_rule(pooled, manifest)


def test_full_server_pools_name_the_pgbouncer_pool_size_not_max_size():
    summary, manifest = recorded("default_pools")
    pooled = behind_pgbouncer(summary, default_pool_size=30, reserve_pool_size=2)  # 32 of 37 on the server
    line = headroom_warning(headroom_of(pooled, other_clients=0))
    # 37 usable less 20 % = 29 kept; less reserve_pool_size 2 = default_pool_size 27
    assert "PgBouncer's server pools hold 32 connections" in line and "default_pool_size 27 keeps it" in line
    assert "max_size" not in line
    found = by_rule(pooled, manifest)["headroom"]
    assert (found["setting"], found["suggested"]) == ("pgbouncer_pool_size", 27)
    assert "max_size" not in found["text"]


def test_pool_wait_behind_pgbouncer_is_bounded_by_max_client_conn_not_the_server():
    summary, manifest = recorded("default_pools")  # 111 of 2131 requests queued: directly, no larger max_size fits
    direct = by_rule(summary, manifest)["pool_wait"]
    assert "no larger max_size keeps" in direct["text"]
    pooled = behind_pgbouncer(summary, default_pool_size=4)
    found = by_rule(pooled, manifest)["pool_wait"]
    assert found["setting"] == "max_size" and found["suggested"] > 8
    assert "max_client_conn 100" in found["text"] and "default_pool_size 4 bounds the server connections" in found["text"]
    assert "no larger max_size keeps" not in found["text"]
