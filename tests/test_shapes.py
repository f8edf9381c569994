import pytest

from loadtests.shapes import BURST, QUIET, burst_stages, phases, stage_at


def test_alternates_quiet_and_burst_until_the_end():
    stages = burst_stages(total_seconds=50, baseline_users=2, burst_users=30, burst_seconds=10, quiet_seconds=10)
    assert [(s.end_s, s.users, s.phase) for s in stages] == [
        (10, 2, QUIET), (20, 30, BURST), (30, 2, QUIET), (40, 30, BURST), (50, 2, QUIET),
    ]


def test_cycles_limit_the_bursts_and_the_rest_is_quiet():
    stages = burst_stages(total_seconds=60, baseline_users=1, burst_users=9, burst_seconds=5, quiet_seconds=5, cycles=1)
    assert [s.phase for s in stages] == [QUIET, BURST, QUIET, QUIET]
    assert stages[-1].end_s == 60


def test_last_stage_is_cut_at_the_total():
    stages = burst_stages(total_seconds=12, baseline_users=0, burst_users=5, burst_seconds=10, quiet_seconds=4)
    assert stages[-1].end_s == 12 and stages[-1].phase == BURST


def test_stage_at_and_end_of_shape():
    stages = burst_stages(total_seconds=20, baseline_users=2, burst_users=8, burst_seconds=10, quiet_seconds=10)
    assert stage_at(stages, 0).phase == QUIET
    assert stage_at(stages, 10.0).phase == BURST
    assert stage_at(stages, 20.0) is None


def test_phases_are_contiguous_intervals():
    stages = burst_stages(total_seconds=30, baseline_users=2, burst_users=8, burst_seconds=10, quiet_seconds=5)
    spans = phases(stages)
    assert spans[0]["start_s"] == 0
    assert all(a["end_s"] == b["start_s"] for a, b in zip(spans, spans[1:]))


def test_rejects_a_non_positive_total():
    with pytest.raises(ValueError):
        burst_stages(total_seconds=0, baseline_users=1, burst_users=2, burst_seconds=1, quiet_seconds=1)
