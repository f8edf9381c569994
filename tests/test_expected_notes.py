"""A scenario's fixed half: the figures it shows by design are marked expected in its own lines and report."""

import json
from pathlib import Path

from loadtests.analysis.advice import advise
from loadtests.analysis.expected import EXPECTED, noted, noted_advice
from loadtests.run.finish import summary_lines
from loadtests.scenarios.catalog import FAULTY, FIXED, find

DATA = Path(__file__).parent / "data" / "advice"
OUTLIVED = "ages: 6 connections outlived max_lifetime 3 s"


def test_the_fixed_half_carries_its_expected_figures_and_the_faulty_half_none(tmp_path):
    scenario = find("lifetime-expiry")
    assert scenario.config(FIXED, results_dir=tmp_path).expected_notes == dict(scenario.expected_in_fixed)
    assert scenario.config(FAULTY, results_dir=tmp_path).expected_notes == {}


def test_lines_and_advice_about_an_expected_figure_say_why():
    expected = dict(find("lifetime-expiry").expected_in_fixed)
    assert noted(OUTLIVED, expected).startswith(f"{OUTLIVED} (expected: psycopg retires a connection only when")
    assert noted("peak 12 connections", expected) == "peak 12 connections"
    advice = [{"severity": "warning", "text": f"{OUTLIVED} -> max_lifetime", "why": "w"},
              {"severity": "warning", "text": "pools: 5 requests waited", "why": "w"}]
    marked = noted_advice(advice, expected)
    assert marked[0]["severity"] == EXPECTED and "(expected: psycopg retires" in marked[0]["text"]
    assert marked[1] == advice[1]


def test_a_run_prints_its_expected_figures_as_expected():
    """A recorded run whose connections outlived max_lifetime: a warning, unless its config declares it expected."""
    recording = json.loads((DATA / "lifetime.json").read_text())
    summary, manifest = recording["summary"], recording["manifest"]
    summary["exact"] = {"available": False, "reason": "kept out of the recording"}  # the recording keeps no exact counts
    summary["advice"] = advise(summary, manifest=manifest)
    plain = summary_lines(summary)
    outlived = [line for line in plain if "outlived max_lifetime" in line]
    assert outlived and not any("(expected:" in line for line in plain)
    summary["expected"] = dict(find("lifetime-expiry").expected_in_fixed)
    lines = summary_lines(summary)
    marked = [line for line in lines if "outlived max_lifetime" in line]
    assert len(marked) == len(outlived) and all("(expected: psycopg retires" in line for line in marked)
    assert any(line.startswith("  - expected: ") for line in marked)  # the advice finding, no longer a warning
