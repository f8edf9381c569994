"""Failure scenarios without a run: the rules, the halves' settings, the judged record, bad input."""

import json
import subprocess
import sys

import pytest

from app.antipatterns import PATTERNS
from app.asyncpg_pool import numbered
from app.settings import Settings
from loadtests.budget import fits
from loadtests.config import RunConfig
from loadtests.scenarios.runner import SCENARIO_JSON, choose, judge, report_lines, table_lines
from loadtests.scenarios.catalog import NAMES, SCENARIOS, find
from loadtests.scenarios.rules import (
    Finding,
    connection_lost_under_request,
    connections_kept_after_bursts,
    connections_outlive_workers,
    event_loop_blocked,
    orphaned_backends,
    pool_stuck_in_another_loop,
    pool_timeouts,
    server_refused_connections,
    silent_drop_failures,
)


def summary(**overrides):
    """A summary.json with the keys the rules read; a clean run unless overridden."""
    base = {
        "verdict": "pass",
        "requests": {"total": 500, "failures": 0},
        "errors_by_class": {},
        "peak_connections": 6,
        "budget": {"pools_total": 6, "extra_clients": 1, "max_size": 3},
        "server": {"usable": 37},
        "connections": {"workers_seen": [11, 12], "oldest_idle_s": 0.8},
        "pool": {"available": True, "requests_waiting_max": 2, "event_loop_lag_max_ms": 12.0, "pool_size_max": 3,
                 "available_while_waiting_max": 0},
        "exact": {"available": True, "refusals": 0},
        "lifecycle": {
            "ages": {"max_lifetime_s": 3.0},
            "drain": {"max_idle_s": 1.0, "bursts": [], "production": {}},
            "orphans": {"workers": []},
        },
    }
    for key, value in overrides.items():
        base[key] = value
    return base


def test_closed_connections_under_requests_are_the_lifetime_failure():
    faulty = connection_lost_under_request(summary(errors_by_class={"db_connection_closed": 22, "db_error": 17},
                                                   requests={"total": 432, "failures": 39}))
    assert faulty.present and "db_connection_closed 22" in faulty.brief and "39 of 432" in faulty.seen
    assert connection_lost_under_request(summary()).present is False


def burst(**values):
    return {"quiet_s": 7.0, "drained": True, "drain_s": 4.2, "peak_total": 8, "target": 0,
            "left_at_quiet_end": 0, "predicted_s": 4.0, **values}


def test_a_burst_still_open_at_the_quiet_end_is_the_drain_failure():
    kept = summary(lifecycle={"drain": {"max_idle_s": 600.0, "bursts": [burst(drained=False, drain_s=None, left_at_quiet_end=8)],
                                        "production": {"extra_per_worker": 4, "max_idle_s": 600.0, "predicted_drain": "40 min"}}})
    finding = connections_kept_after_bursts(kept)
    assert finding.present and "still 8" in finding.seen and "40 min" in finding.seen
    drained = summary(lifecycle={"drain": {"max_idle_s": 1.0, "bursts": [burst()], "production": {}}})
    assert connections_kept_after_bursts(drained).present is False
    unmeasured = summary(lifecycle={"drain": {"max_idle_s": 1.0, "bursts": [burst(quiet_s=0)]}})
    assert connections_kept_after_bursts(unmeasured).present is None


def test_churn_failure_is_a_peak_above_budget_or_lingering_orphans():
    assert connections_outlive_workers(summary(peak_connections=9)).present
    one_check = {"workers": [{"pid": 5, "first_seen_s": 3.0, "last_seen_s": 3.0}]}
    assert connections_outlive_workers(summary(lifecycle={"orphans": one_check})).present is False
    lingering = {"workers": [{"pid": 5, "first_seen_s": 3.0, "last_seen_s": 4.0}]}
    assert connections_outlive_workers(summary(lifecycle={"orphans": lingering})).present


def test_pool_timeouts_and_refusals():
    assert pool_timeouts(summary(errors_by_class={"pool_timeout": 3})).present
    assert pool_timeouts(summary(errors_by_class={"db_error": 3})).present is False
    assert server_refused_connections(summary(exact={"available": True, "refusals": 8})).present
    assert server_refused_connections(summary(peak_connections=9, server={"usable": 10})).present  # 9 + 1 harness
    assert server_refused_connections(summary(peak_connections=8, server={"usable": 10})).present is False


STUCK_POOL = {"available": True, "requests_waiting_max": 5, "event_loop_lag_max_ms": 3.0, "pool_size_max": 1,
              "available_while_waiting_max": 0}


def test_loop_mismatch_is_its_own_signature_not_any_pool_timeout():
    assert pool_stuck_in_another_loop(summary(pool=STUCK_POOL)).present
    # A pool that grew to max_size and timed out is another failure (too small a pool), not this one.
    assert pool_stuck_in_another_loop(summary(errors_by_class={"pool_timeout": 9})).present is False
    # A pool that had a connection while requests waited is not stuck.
    assert pool_stuck_in_another_loop(summary(pool={**STUCK_POOL, "available_while_waiting_max": 1})).present is False
    # Nothing idle on the server: the connections are not the pool's idle ones.
    assert pool_stuck_in_another_loop(summary(pool=STUCK_POOL, connections={"workers_seen": [], "oldest_idle_s": 0.0})).present is False
    assert pool_stuck_in_another_loop(summary(pool={"available": False})).present is None


def _proxy(**values):
    return {"mode": "silent", "idle_cut_s": 2.0, "cuts": {"reset": 0, "silent": 4}, "cut_idle": 4, "hung_requests": 3,
            "hang_max_s": 1.02, "backends_left_open": 0, "backend_after_cut_max_s": 1.0, **values}


def test_silent_drop_is_closed_failures_behind_the_proxy():
    faulty = silent_drop_failures(summary(proxy=_proxy(), errors_by_class={"db_connection_closed": 3}))
    assert faulty.present and "hung up to 1.02 s" in faulty.brief and "3 requests or checks hung" in faulty.seen
    assert silent_drop_failures(summary(proxy=_proxy())).present is False
    assert silent_drop_failures(summary()).present is None


def test_host_vanishes_is_backends_left_behind_on_the_server():
    faulty = orphaned_backends(summary(proxy=_proxy(backends_left_open=4, backend_after_cut_max_s=5.1)))
    assert faulty.present and faulty.brief == "4 orphaned backends, kept up to 5.1 s"
    assert orphaned_backends(summary(proxy=_proxy())).present is False
    assert orphaned_backends(summary()).present is None


def test_blocked_loop_is_seconds_of_lag_or_an_idle_connection_closed_late():
    assert event_loop_blocked(summary(pool={"available": True, "event_loop_lag_max_ms": 3000.0})).present
    late = summary(connections={"workers_seen": [], "oldest_idle_s": 2.9})
    assert event_loop_blocked(late).present
    assert event_loop_blocked(summary()).present is False
    assert event_loop_blocked(summary(pool={"available": False})).present is None


def test_detected_only_when_the_faulty_half_shows_the_failure_and_the_fixed_one_does_not():
    scenario = SCENARIOS[0]
    seen, clean, unknown = Finding(True, "", ""), Finding(False, "", ""), Finding(None, "", "")
    assert scenario.detected(seen, clean)
    assert not scenario.detected(seen, seen) and not scenario.detected(clean, clean) and not scenario.detected(seen, unknown)


def test_every_half_is_a_valid_config_and_only_faulty_halves_use_anti_patterns(tmp_path):
    assert len(NAMES) == 13 and set(NAMES) == {
        "lifetime-expiry", "lifetime-expiry-async", "idle-drain", "worker-churn", "loop-mismatch", "server-idle-kill",
        "proxy-silent-drop", "host-vanishes", "blocking-loop", "overcommit",
        "sqlalchemy-overflow-churn", "pgbouncer-fixes-overcommit", "prepared-statements-behind-pgbouncer"}
    for scenario in SCENARIOS:
        fixed = scenario.config("fixed", results_dir=tmp_path)
        # lifetime-expiry's fix is one change: the per-request autocommit stays, inside the block.
        assert fixed.app_pattern in ("default", "autocommit-per-request") and fixed.workers == 2 and fixed.duration <= 12
        assert scenario.config("faulty", results_dir=tmp_path).app_pattern in PATTERNS
    with pytest.raises(ValueError, match="half must be one of"):
        SCENARIOS[0].config("broken")


def test_the_overcommit_fix_is_the_largest_max_size_that_fits():
    scenario = find("overcommit")
    faulty, fixed = scenario.config("faulty"), scenario.config("fixed")
    limits = faulty.embedded_limits()
    assert not fits(faulty.budget, limits) and faulty.allow_overcommit
    assert fits(fixed.budget, limits) and not fixed.allow_overcommit
    assert not fits(fixed.model_copy(update={"max_size": fixed.max_size + 1}).budget, limits)


def test_choose_by_name_or_all():
    assert [s.name for s in choose(["overcommit", "idle-drain", "overcommit"])] == ["overcommit", "idle-drain"]
    assert len(choose(["all"])) == len(SCENARIOS)
    with pytest.raises(ValueError, match="unknown scenario 'nope'; known: lifetime-expiry"):
        choose(["nope"])


def _write_run(folder, name, summary_data):
    (folder / name).mkdir(parents=True)
    (folder / name / "summary.json").write_text(json.dumps(summary_data))


def test_the_record_is_judged_from_the_folder_alone(tmp_path):
    _write_run(tmp_path, "t-faulty-w2", summary(errors_by_class={"pool_timeout": 30}, requests={"total": 180, "failures": 30},
                                                pool=STUCK_POOL))
    _write_run(tmp_path, "t-fixed-w2", summary())
    runs = {"faulty": {"run_dir": "t-faulty-w2", "exit_code": 1}, "fixed": {"run_dir": "t-fixed-w2", "exit_code": 0}}
    (tmp_path / SCENARIO_JSON).write_text(json.dumps({"scenario": "loop-mismatch", "status": "finished", "runs": runs}))
    record = judge(tmp_path)
    assert record["detected"] and record["faulty"]["failure_seen"] and record["fixed"]["failure_seen"] is False
    assert record["faulty"]["brief"] == "pool_size max 1, available 0 with 5 waiting" and record["fixed"]["verdict"] == "pass"
    text = "\n".join(report_lines(record))
    assert "expected: requests waiting while pool_size stays" in text and "-> failure seen" in text and text.endswith("detected: yes")
    header, row = table_lines([record])
    assert header.split() == ["scenario", "faulty", "result", "fixed", "result", "detected"]
    assert row.startswith("loop-mismatch") and row.endswith("yes")


def test_a_half_that_did_not_run_is_not_detected(tmp_path):
    _write_run(tmp_path, "t-faulty-w2", summary(errors_by_class={"pool_timeout": 30}))
    (tmp_path / SCENARIO_JSON).write_text(json.dumps({"scenario": "loop-mismatch", "runs": {"faulty": {"run_dir": "t-faulty-w2"}}}))
    record = judge(tmp_path)
    assert record["fixed"]["failure_seen"] is None and record["detected"] is False


def test_unknown_scenario_is_one_line_and_exit_2(tmp_path):
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "loadtests.cli", "scenario", "lifetime-expiry", "nope",
                           "--results-dir", str(results)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "poolcheck: error: unknown scenario 'nope'; known: lifetime-expiry, lifetime-expiry-async, idle-drain,"
        " worker-churn, loop-mismatch, server-idle-kill, proxy-silent-drop, host-vanishes, blocking-loop, overcommit,"
        " sqlalchemy-overflow-churn, pgbouncer-fixes-overcommit, prepared-statements-behind-pgbouncer"]
    assert not results.exists()


def test_anti_patterns_are_refused_for_the_pool_kinds_they_do_not_fit():
    with pytest.raises(ValueError, match="--app-pattern pool-in-other-loop: written for --pool-kind async"):
        RunConfig(app_pattern="pool-in-other-loop", pool_kind="sync")
    with pytest.raises(ValueError, match="unknown pattern"):
        RunConfig(app_pattern="nope")
    with pytest.raises(ValueError, match="APP_PATTERN blocking-sleep: written for POOL_KIND async or asyncpg"):
        Settings(DATABASE_URL="postgresql://x@127.0.0.1/db", APP_PATTERN="blocking-sleep", POOL_KIND="sync")
    assert Settings(DATABASE_URL="postgresql://x@127.0.0.1/db").APP_PATTERN == "default"


def test_asyncpg_placeholders_are_numbered():
    assert numbered("INSERT INTO t (a, b) VALUES (%s, %s)") == "INSERT INTO t (a, b) VALUES ($1, $2)"
    assert numbered("SELECT 1") == "SELECT 1"


def test_each_half_shows_a_real_error_of_each_class_from_the_app_log(tmp_path):
    from loadtests.scenarios.evidence import error_examples

    lines = [
        "[2026-11-22 00:52:20 +0000] [13088] [INFO] Booting worker with pid: 13089",
        "[2026-11-22 00:52:21,101] [13089] [WARNING] poolcheck.app.errors: GET /items/read: db_connection_closed"
        " (the connection is closed)",
        "[2026-11-22 00:52:21,102] [13089] [WARNING] poolcheck.app.errors: GET /items/hold: db_connection_closed"
        " (consuming input failed: server closed the connection unexpectedly)",
        "[2026-11-22 00:52:22,000] [13093] [WARNING] poolcheck.app.errors: POST /items/write: db_error"
        " (can't change 'autocommit' now: connection in transaction status INTRANS)",
    ]
    (tmp_path / "gunicorn-h1.log").write_text("\n".join(lines) + "\n")
    assert error_examples(tmp_path) == {
        "db_connection_closed": "GET /items/read: the connection is closed",
        "db_error": "POST /items/write: can't change 'autocommit' now: connection in transaction status INTRANS",
    }
    assert error_examples(tmp_path / "missing") == {}


def test_the_record_points_at_the_code_and_explains_the_fixed_halfs_expected_figures(tmp_path):
    from loadtests.scenarios.runner import explain_expected

    scenario = find("lifetime-expiry")
    assert scenario.faulty_code.startswith("app/antipatterns.py: ") and scenario.fixed_code and scenario.single_change
    _write_run(tmp_path, "t-faulty-w2", summary(errors_by_class={"db_connection_closed": 12}, requests={"total": 180, "failures": 12}))
    (tmp_path / "t-faulty-w2" / "gunicorn-h1.log").write_text(
        "[x] [1] [WARNING] poolcheck.app.errors: GET /items/read: db_connection_closed (the connection is closed)\n")
    outlived = {"ages": {"sessions_over_max_lifetime": 6, "max_lifetime_s": 3.0, "exceeded": True}}
    _write_run(tmp_path, "t-fixed-w2", summary(lifecycle=outlived))
    runs = {"faulty": {"run_dir": "t-faulty-w2", "exit_code": 1}, "fixed": {"run_dir": "t-fixed-w2", "exit_code": 0}}
    (tmp_path / SCENARIO_JSON).write_text(json.dumps({"scenario": "lifetime-expiry", "status": "finished", "runs": runs}))
    record = judge(tmp_path)
    text = "\n".join(report_lines(record))
    assert "  error:    db_connection_closed: GET /items/read: the connection is closed" in text
    assert f"  code:     {scenario.faulty_code}" in text and f"  code:     {scenario.fixed_code}" in text
    assert f"the one change that fixes it: {scenario.single_change}" in text
    assert "6 connections outlived max_lifetime 3 s (expected: " in record["fixed"]["seen"]
    assert "(expected" not in record["faulty"]["seen"]
    assert explain_expected("a; b c", {"b": "why"}) == "a; b c (expected: why)"
