"""junit.xml: a run's verdict and thresholds as a JUnit test report, for CI test-report views.

One <testsuite> per run. Its testcases: `verdict`, the harness's own checks
(budget, refusals, leaks, failure ratio), failing with their reasons; then
one testcase per threshold, failing with the value measured. A pure function
of summary.json, like the report.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from loadtests.analysis.threshold_checks import threshold_reason
from loadtests.run_folder import JUNIT_XML, write_atomically

SUITE = "poolcheck"
_PASS = "pass"


def _testcase(suite: ET.Element, name: str, *, classname: str, failure: str | None, text: str = "") -> None:
    case = ET.SubElement(suite, "testcase", name=name, classname=classname, time="0")
    if failure is not None:
        element = ET.SubElement(case, "failure", message=failure, type="threshold" if "thresholds" in classname else "verdict")
        element.text = text or failure
    elif text:
        ET.SubElement(case, "system-out").text = text


def junit_xml(summary: dict[str, Any]) -> str:
    """The JUnit XML text of a summary."""
    run_id = summary["run_id"]
    thresholds = summary.get("thresholds", [])
    threshold_reasons = {threshold_reason(t) for t in thresholds if not t["passed"]}
    own_reasons = [r for r in summary["reasons"] if r not in threshold_reasons]
    own_failed = summary.get("checks_verdict", summary["verdict"]) != _PASS
    failures = int(own_failed) + sum(not t["passed"] for t in thresholds)

    suites = ET.Element("testsuites", name=SUITE, tests=str(1 + len(thresholds)), failures=str(failures))
    suite = ET.SubElement(suites, "testsuite", name=f"{SUITE} run {run_id}", tests=str(1 + len(thresholds)),
                          failures=str(failures), errors="0", skipped="0", time="0")
    if summary.get("started_at"):
        suite.set("timestamp", summary["started_at"])
    reasons_text = "\n".join(own_reasons)  # when the checks passed: the checks that held
    _testcase(suite, "verdict", classname=f"{SUITE}.verdict",
              failure=f"verdict {summary['verdict']}: {'; '.join(own_reasons)}" if own_failed else None,
              text=reasons_text)
    for t in thresholds:
        _testcase(suite, t["expression"], classname=f"{SUITE}.thresholds",
                  failure=None if t["passed"] else threshold_reason(t),
                  text=f"measured {t['measured_text']}")
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(run_dir: Path, summary: dict[str, Any]) -> Path:
    return write_atomically(run_dir / JUNIT_XML, junit_xml(summary))
