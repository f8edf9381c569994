"""SHOW POOLS rows summed per sample: a sample written twice counts once."""

from loadtests.analysis.pgbouncer_figures import sum_by_sample


def _row(timestamp, *, user="app", active=6):
    return {"timestamp": timestamp, "database": "poolcheck", "user": user, "cl_active": active, "cl_waiting": 0,
            "sv_active": active, "sv_idle": 0, "sv_used": 0, "sv_login": 0, "maxwait_s": 0.0}


def test_a_sample_written_twice_in_the_same_millisecond_counts_once():
    # As recorded by a real session-mode run: two identical rows at 01:44:25.818
    rows = [_row("t1"), _row("t2"), _row("t2"), _row("t3")]
    assert [int(sample["clients"]) for _, sample in sum_by_sample(rows)] == [6, 6, 6]


def test_several_pools_of_one_sample_add_up():
    rows = [_row("t1", user="app", active=4), _row("t1", user="other", active=2)]
    (_, sample), = sum_by_sample(rows)
    assert (sample["clients"], sample["server"]) == (6, 6)
