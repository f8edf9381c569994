"""Figures a run shows by design, and the note that says so wherever a line shows one.

A scenario's fixed half declares them (`expected_in_fixed`: words of a line ->
why they are expected), its run carries them in its config, and its summary
in `expected`. "6 connections outlived max_lifetime" in the fixed half of
lifetime-expiry is how psycopg retires an idle connection, not a bug: the
run's own lines and its report say so, as scenario.txt does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXPECTED = "expected"  # the severity an advice finding takes when the run shows its figure by design


def expected_why(line: str, expected: Mapping[str, str]) -> str | None:
    """Why `line` shows what it does by design; None when nothing declared matches it."""
    return next((why for words, why in expected.items() if words in line), None)


def noted(line: str, expected: Mapping[str, str]) -> str:
    why = expected_why(line, expected)
    return f"{line} (expected: {why})" if why else line


def noted_advice(findings: list[dict[str, Any]], expected: Mapping[str, str]) -> list[dict[str, Any]]:
    """The advice, each finding about an expected figure marked `expected` rather than a warning."""
    marked = []
    for item in findings:
        why = expected_why(item["text"], expected)
        marked.append({**item, "severity": EXPECTED, "text": f"{item['text']} (expected: {why})"} if why else item)
    return marked
