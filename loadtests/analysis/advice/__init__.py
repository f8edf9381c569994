"""Advice: what to change and why, from a run's summary.json and manifest.json; a pure function of them.

Every rule reads the summary's figures and the run's settings and returns
findings (see `findings.finding`); a run where no rule asks for a change gets
one finding saying that nothing needs to change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loadtests.analysis.advice import failure_rules, lifecycle_rules, pool_rules, proxy_rules
from loadtests.analysis.advice.findings import SEVERITIES, Finding, Known
from loadtests.analysis.headroom import DEFAULT_TARGET

Rule = Callable[..., list[Finding]]

RULES: tuple[Rule, ...] = (
    pool_rules.usable_limit,
    failure_rules.failures,
    pool_rules.pool_wait,
    pool_rules.headroom,
    pool_rules.over_budget,
    lifecycle_rules.loop_lag,
    lifecycle_rules.lifetime,
    lifecycle_rules.drain,
    proxy_rules.proxy_cuts,
)


def advise(summary: dict[str, Any], *, manifest: dict[str, Any], headroom_target: float = DEFAULT_TARGET) -> list[Finding]:
    """Every finding of every rule, the most severe first; "nothing to change" when none asks for a change."""
    if not 0.0 <= headroom_target < 1.0:
        raise ValueError(f"headroom_target must be in [0, 1), got {headroom_target!r}")
    known = Known(manifest)
    found = [f for rule in RULES for f in rule(summary, known, target=headroom_target)]
    found.sort(key=lambda f: SEVERITIES.index(f["severity"]))  # stable: rule order within a severity
    return pool_rules.nothing_to_change(found) + found


def advice_lines(findings: list[Finding]) -> list[str]:
    """The findings as the terminal shows them, one line each."""
    return [f"{f['severity']}: {f['text']}" for f in findings]
