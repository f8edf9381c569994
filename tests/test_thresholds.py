"""Thresholds: the grammar, the figures they read from a recorded summary, and the JUnit file made of them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from loadtests.analysis.threshold_checks import check_thresholds, threshold_lines
from loadtests.present.junit import junit_xml
from loadtests.thresholds import METRICS, parse_threshold

DATA = Path(__file__).parent / "data" / "advice"


def recorded(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text())["summary"]


@pytest.mark.parametrize(
    ("text", "measure", "op", "limit", "expression"),
    [
        ("p95<300ms", "p95", "<", 300, "p95<300ms"),
        ("p(99) <= 1.5s", "p99", "<=", 1500, "p99<=1.5s"),
        ("p50<250", "p50", "<", 250, "p50<250"),  # a bare number is ms, as in k6
        ("failures<0.1%", "failure_ratio", "<", 0.001, "failures<0.1%"),
        ("failures==0", "failures", "==", 0, "failures==0"),
        ("failure_ratio<=0.02", "failure_ratio", "<=", 0.02, "failure_ratio<=0.02"),
        ("rps>50", "rps", ">", 50, "rps>50"),
        ("peak_connections<=30", "peak_connections", "<=", 30, "peak_connections<=30"),
        ("headroom>=20%", "headroom_share", ">=", 0.2, "headroom>=20%"),
        ("headroom>4", "headroom", ">", 4, "headroom>4"),
        ("pool_wait_mean<50ms", "pool_wait_mean", "<", 50, "pool_wait_mean<50ms"),
        ("connections_refused==0", "refused", "==", 0, "refused==0"),
    ],
)
def test_grammar(text: str, measure: str, op: str, limit: float, expression: str) -> None:
    threshold = parse_threshold(text)
    assert (threshold.measure, threshold.op, threshold.expression) == (measure, op, expression)
    assert threshold.limit == pytest.approx(limit)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("p95", "is not METRIC<LIMIT"),
        ("p95<fast", "is not METRIC<LIMIT"),
        ("p95=<300", "is not METRIC<LIMIT"),
        ("latency<300ms", "unknown metric 'latency'; known: p50, p95"),
        ("p95<30%", "p95 is a duration; give ms or s"),
        ("rps>5ms", "rps is not a duration"),
        ("rps>5%", "rps is a rate, not a share"),
        ("peak_connections<50%", "peak_connections is a count, not a share"),
        ("failure_ratio<5", "write 5% for a percentage"),
        ("pool_wait_p95<50ms", "pool_wait_p95: not measurable"),
    ],
)
def test_malformed_threshold_says_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        parse_threshold(text)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_pool_wait_p95_names_what_is_available() -> None:
    with pytest.raises(ValueError) as caught:
        parse_threshold("pool_wait_p95<50ms")
    assert "pool_wait_mean" in str(caught.value)


def test_measured_values_of_a_recorded_run() -> None:
    """overcommit: 421 requests, 0 failed, p95 710 ms, 42.06 req/s, exact peak 9, 4 refused,
    budget 16 + 1 on 10 usable (13 - 3 reserved), pool wait 42829 ms over 430 requests."""
    summary = recorded("overcommit")
    pool = summary["pool"]
    results = {r["expression"]: r for r in check_thresholds(summary, [
        "p95<800ms", "p95<700ms", "failures==0", "rps>50", "peak_connections<=9", "refused==0",
        "headroom>=0", "pool_wait_mean<50ms", "failures<0.1%",
    ], other_clients=0)}
    assert {e: r["passed"] for e, r in results.items()} == {
        "p95<800ms": True, "p95<700ms": False, "failures==0": True, "rps>50": False, "peak_connections<=9": True,
        "refused==0": False, "headroom>=0": False, "pool_wait_mean<50ms": False, "failures<0.1%": True,
    }
    assert results["p95<700ms"]["measured"] == 710 and results["p95<700ms"]["measured_text"] == "710 ms"
    assert results["refused==0"]["measured"] == 4
    assert results["headroom>=0"]["measured"] == 10 - 16  # usable less the pools' 2 x 8
    own_mean = pool["wait_ms_total"] / pool["requests_total"]
    assert results["pool_wait_mean<50ms"]["measured"] == pytest.approx(own_mean)
    assert results["pool_wait_mean<50ms"]["measured_text"] == "99.6 ms"
    assert results["failures<0.1%"]["measured_text"] == "0%"


def test_unmeasured_figure_fails_the_threshold() -> None:
    summary = recorded("overcommit")
    del summary["pool"], summary["exact"]
    results = check_thresholds(summary, ["pool_wait_mean<1s", "refused==0"], other_clients=0)
    assert [(r["measured_text"], r["passed"]) for r in results] == [("not measured", False)] * 2


def test_every_metric_is_measured_on_a_full_summary() -> None:
    summary = recorded("overcommit")
    examples = {"p50": "p50<1s", "p95": "p95<1s", "p99": "p99<1s", "failures": "failures<1",
                "failure_ratio": "failure_ratio<1", "rps": "rps>1", "peak_connections": "peak_connections<99",
                "headroom": "headroom<99", "pool_wait_mean": "pool_wait_mean<9s", "refused": "refused<99"}
    assert set(examples) == set(METRICS)
    results = check_thresholds(summary, list(examples.values()), other_clients=0)
    assert all(r["measured"] is not None for r in results), results


def test_lines_and_junit_counts() -> None:
    summary = recorded("overcommit")
    summary = {**summary, "verdict": "fail", "checks_verdict": "fail", "started_at": "2025-01-01T00:00:00Z"}
    summary["thresholds"] = check_thresholds(summary, ["p95<800ms", "rps>50", "refused==0"], other_clients=0)
    lines = threshold_lines(summary["thresholds"])
    assert lines[0] == "thresholds: 1 of 3 met"
    assert "  FAIL rps>50: 42.06" in lines and "  ok   p95<800ms: 710 ms" in lines

    root = ET.fromstring(junit_xml(summary))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["verdict", "p95<800ms", "rps>50", "refused==0"]
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    # The recorded run failed on its own (the server refused 4): the verdict case fails too.
    assert failed == ["verdict", "rps>50", "refused==0"]
    assert suite.get("tests") == "4" and suite.get("failures") == "3" and root.get("failures") == "3"
    assert "measured 42.06" in cases[2].find("failure").get("message")


def test_junit_verdict_case_passes_when_only_thresholds_failed() -> None:
    summary = {**recorded("overcommit"), "verdict": "fail", "checks_verdict": "pass"}
    summary["thresholds"] = check_thresholds(summary, ["rps>50"], other_clients=0)
    cases = ET.fromstring(junit_xml(summary)).find("testsuite").findall("testcase")
    assert [(c.get("name"), c.find("failure") is not None) for c in cases] == [("verdict", False), ("rps>50", True)]
