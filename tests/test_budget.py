from loadtests.budget import Budget, ServerLimits, explain, fits, headroom, largest_max_size, largest_workers


def test_total_counts_every_pool_and_extra_client():
    budget = Budget(hosts=2, workers=4, max_size=5, pools_per_worker=2, extra_clients=3)
    assert budget.per_host == 40
    assert budget.total == 83


def test_usable_leaves_out_reserved_slots():
    limits = ServerLimits(max_connections=100, superuser_reserved_connections=3, reserved_connections=5)
    assert limits.usable == 92


def test_fits_at_the_edge_and_not_one_above():
    limits = ServerLimits(max_connections=40, superuser_reserved_connections=3)
    assert fits(Budget(hosts=1, workers=4, max_size=9, extra_clients=1), limits)  # 37 of 37
    assert not fits(Budget(hosts=1, workers=4, max_size=9, extra_clients=2), limits)
    assert headroom(Budget(hosts=1, workers=4, max_size=8, extra_clients=1), limits) == 4


def test_largest_values_that_fit():
    limits = ServerLimits(max_connections=100, superuser_reserved_connections=3)
    budget = Budget(hosts=2, workers=4, max_size=20, extra_clients=1)
    assert largest_max_size(budget, limits) == 12  # 2*4*12 + 1 = 97
    assert largest_workers(budget, limits) == 2  # 2*2*20 + 1 = 81
    assert fits(Budget(hosts=2, workers=4, max_size=12, extra_clients=1), limits)
    assert not fits(Budget(hosts=2, workers=4, max_size=13, extra_clients=1), limits)


def test_explain_names_every_number():
    line = explain(Budget(hosts=1, workers=4, max_size=10, extra_clients=1), ServerLimits(max_connections=40))
    for figure in ("4 workers", "max_size 10", "= 41", "usable 37", "max_connections 40", "does NOT fit", "-4"):
        assert figure in line
