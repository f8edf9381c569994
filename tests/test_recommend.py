"""The sweep's recommendation and its table rows: pure functions, synthetic figures."""

import pytest

from loadtests.budget import ServerLimits
from loadtests.sweep.recommend import Criteria, recommend
from loadtests.sweep.table import cell_key, cell_row, table_rows

LIMITS = ServerLimits(max_connections=40, superuser_reserved_connections=3)  # usable 37, 29 with 20 % headroom


def row(workers, max_size, rps, *, p95=100.0, failure_ratio=0.0, passes=1, runs=1, spread=None, kind="async"):
    return {
        "key": cell_key(pool_kind=kind, workers=workers, max_size=max_size), "pool_kind": kind,
        "workers": workers, "max_size": max_size, "hosts": 1, "status": "ran", "refused": None,
        "runs": runs, "passes": passes, "rps": rps, "rps_spread_pct": spread, "p95_ms": p95,
        "failure_ratio": failure_ratio, "connections": workers * max_size,
    }


def test_smallest_connection_count_within_five_percent_of_the_best():
    rows = [row(1, 2, 40.0), row(2, 4, 96.0), row(4, 4, 100.0), row(2, 8, 99.0), row(4, 8, 101.0)]
    choice = recommend(rows, criteria=Criteria(), limits=LIMITS)
    # 4 x 8 = 32 is over 29 (20 % headroom); best qualifying 100.0; 2 x 4 = 8 connections at 96.0 is within 5 %.
    assert choice["cell"] == "async-w2-m4"
    assert choice["best_cell"] == "async-w4-m4"
    assert "above 29" in choice["excluded"]["async-w4-m8"][0]
    assert choice["hosts_within_headroom"] == 3 and choice["hosts_at_most"] == 4  # 29 // 8, 37 // 8
    assert any("within 5 % of the best" in reason for reason in choice["reasons"])


def test_just_outside_the_margin_is_not_as_good():
    rows = [row(2, 4, 94.9), row(4, 4, 100.0)]
    assert recommend(rows, criteria=Criteria(), limits=LIMITS)["cell"] == "async-w4-m4"


def test_slo_failures_and_verdicts_exclude_cells():
    rows = [
        row(1, 2, 100.0, p95=900.0),
        row(1, 4, 100.0, failure_ratio=0.02),
        row(2, 2, 100.0, passes=1, runs=3),
        row(2, 4, 90.0, p95=300.0, passes=2, runs=3),
    ]
    choice = recommend(rows, criteria=Criteria(slo_p95_ms=500, max_failure_ratio=0.01), limits=LIMITS)
    assert choice["cell"] == "async-w2-m4"
    assert "p95 900 ms above --slo-p95-ms 500" in choice["excluded"]["async-w1-m2"]
    assert "above --max-failure-ratio 0.01" in choice["excluded"]["async-w1-m4"][0]
    assert "verdict pass in only 1 of 3 runs" in choice["excluded"]["async-w2-m2"]


def test_other_clients_count_against_the_headroom():
    choice = recommend([row(4, 7, 100.0)], criteria=Criteria(), limits=LIMITS, other_clients=2)
    assert choice["cell"] is None  # 28 + 2 = 30 > 29
    assert recommend([row(4, 7, 100.0)], criteria=Criteria(), limits=LIMITS)["cell"] == "async-w4-m7"


def test_refused_cells_and_no_qualifying_cell():
    refused = {**row(8, 8, 0.0), "status": "refused", "refused": "over budget: ..."}
    choice = recommend([refused], criteria=Criteria(), limits=LIMITS)
    assert choice["cell"] is None and choice["excluded"]["async-w8-m8"] == ["over budget: ..."]


def test_a_noisy_choice_says_so():
    choice = recommend([row(2, 4, 98.0, spread=12.0, runs=3, passes=3)], criteria=Criteria(), limits=LIMITS)
    assert any("varied by up to 12 %" in reason for reason in choice["reasons"])


@pytest.mark.parametrize("bad", [{"headroom_ratio": 1.0}, {"headroom_ratio": -0.1}, {"slo_p95_ms": 0}])
def test_criteria_refuse_nonsense(bad):
    with pytest.raises(ValueError):
        Criteria(**bad)


def summary(rps, p95, *, verdict="pass", failures=0, errors=None, peak=5, exact=None, waited_ms=None):
    return {
        "verdict": verdict, "complete": True, "peak_connections": peak, "errors_by_class": errors or {},
        "requests": {"rps": rps, "p95_ms": p95, "p99_ms": p95 * 2, "failures": failures,
                     "failure_ratio": failures / 1000},
        **({"exact": {"peak": exact}} if exact is not None else {}),
        **({"pool": {"available": True, "wait_ms_total": waited_ms, "requests_total": 100}} if waited_ms else {}),
    }


CELL = {"key": "sync-w2-m4", "pool_kind": "sync", "workers": 2, "max_size": 4, "hosts": 1, "fits": True,
        "refused": None, "budget": {"pools_total": 8, "total": 9}, "runs": []}


def test_cell_row_takes_medians_worst_peaks_and_summed_failures():
    runs = [
        summary(100.0, 200.0, peak=7, exact=8, waited_ms=1000),
        summary(90.0, 260.0, peak=8, exact=9, failures=3, errors={"pool_timeout": 3}, waited_ms=3000),
        summary(110.0, 210.0, peak=6),
        {**summary(1.0, 1.0), "verdict": "interrupted"},  # left out of every figure
    ]
    got = cell_row(CELL, runs)
    assert got["status"] == "ran" and got["runs"] == 3 and got["passes"] == 3
    assert got["rps"] == 100.0 and got["rps_spread_pct"] == 20.0  # (110 - 90) / 100
    assert got["p95_ms"] == 210.0 and got["p95_spread_ms"] == 60.0
    assert got["peak_sampled"] == 8 and got["peak_exact"] == 9
    assert got["failures"] == 3 and got["failures_by_class"] == {"pool_timeout": 3}
    assert got["pool_wait_mean_ms"] == 20.0  # median of 10 and 30 ms per request; the third run has no pool figures


def test_table_rows_show_spread_refusal_and_recommendation():
    ran = {**cell_row(CELL, [summary(100.0, 200.0), summary(80.0, 220.0)]), "recommended": True}
    refused = {**cell_row({**CELL, "key": "sync-w8-m8", "refused": "over budget", "fits": False}, []),
               "recommended": False}
    text = table_rows({"rows": [ran, refused]})
    assert text[0][4] == "90 (spread 22.2 %)" and text[0][-1] == "RECOMMENDED"
    assert text[1][-2:] == ["NO", "refused: over budget"]
