"""A SQLAlchemy engine's drain: its overflow closes on return, its pool_size is kept for good."""

from loadtests.analysis.lifecycle import engine_production_drain


def test_engine_drain_says_what_is_true_for_an_engine():
    drain = engine_production_drain(peak_per_worker=11, pool_size=1)
    assert drain["overflow_closed_per_worker"] == 10 and drain["kept_per_worker"] == 1
    assert drain["extra_per_worker"] == 0 and drain["predicted_drain_s"] == 0.0  # no idle timer to wait for
    below = engine_production_drain(peak_per_worker=3, pool_size=8)
    assert below["overflow_closed_per_worker"] == 0 and below["kept_per_worker"] == 3
