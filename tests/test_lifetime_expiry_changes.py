"""lifetime-expiry's fix split into its single changes, each run on the field report's sync ConnectionPool.

The team's fix bundled three changes: yield inside the `with pool.connection()`
block, the settings in `configure`, and `check`. The scenario's fixed half is
the first alone (tests/test_scenarios.py: no failure). Here the other two run
alone, with the scenario's own load and max_lifetime 3 s: both still fail with
"the connection is closed", because the dependency still gives the connection
back before the route uses it. The failures are counted from Locust's file
and, by their text, from the app's log.
"""

from __future__ import annotations

import pytest

from conftest import RunResult, poolcheck
from own_counts import locust_failures
from loadtests.analysis.app_errors import OTHER_TEXTS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_lifetime_expiry_changes")]

LOAD = ["--pool-kind", "sync", "--workers", "2", "--max-size", "3", "--min-size", "1", "--max-lifetime", "3",
        "--duration", "10", "--cycles", "1", "--quiet-seconds", "1", "--burst-seconds", "8", "--burst-users", "12",
        "--baseline-users", "4", "--sample-interval", "0.1"]
CLOSED = "the connection is closed"


def _app_said(run: RunResult, text: str) -> int:
    """The app's failed-request lines (app/errors.py logs one per request) that hold `text`."""
    return sum(1 for log in run.run_dir.glob("gunicorn-h*.log")
               for line in log.read_text().splitlines() if "poolcheck.app.errors" in line and text in line)


@pytest.fixture(scope="module")
def configure_alone(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # The settings in `configure`, nothing changed per request; the connection still given back before use.
    return poolcheck("run", *LOAD, "--app-pattern", "use-after-return", "--no-pool-check",
                     results_dir=tmp_path_factory.mktemp("configure") / "results")


@pytest.fixture(scope="module")
def check_alone(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # The team's per-request autocommit after giving the connection back, with check: it runs at hand-out.
    return poolcheck("run", *LOAD, "--app-pattern", "autocommit-after-return", "--pool-check",
                     results_dir=tmp_path_factory.mktemp("check") / "results")


@pytest.mark.parametrize("change", ["configure_alone", "check_alone"])
def test_a_single_change_other_than_yielding_inside_the_block_leaves_the_error(change, request):
    run: RunResult = request.getfixturevalue(change)
    summary = run.json("summary.json")
    assert summary["requests"]["total"] > 100
    failed = sum(locust_failures(run.run_dir).values())
    assert summary["requests"]["failures"] == failed > 0
    # The team's own words, in the app's log and in the summary's error texts.
    closed = _app_said(run, CLOSED)
    assert closed > 0
    texts = summary["error_texts"]
    # Every failed request the app logged is counted; the rarest texts only together, under "other texts".
    assert sum(texts.values()) == _app_said(run, "")
    listed = sum(n for text, n in texts.items() if CLOSED in text)
    assert listed <= closed <= listed + texts.get(OTHER_TEXTS, 0)
    # The advice names the fix that works, not the check (on in check_alone) nor configure.
    advice = {f["rule"]: f for f in summary["advice"]}
    assert "yield inside the block" in advice["failures:db_connection_closed"]["text"]
    assert advice["failures:db_connection_closed"]["setting"] != "pool_check"
