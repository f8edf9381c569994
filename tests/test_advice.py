"""Advice rules on recorded runs: each rule fires where its trigger was produced, and stays quiet elsewhere.

tests/data/advice/*.json are real runs' summary.json and manifest.json,
stripped to what the rules read:

- small_pools: 2 workers x max_size 1, bursts of 32 users (requests queue);
- drain: 2 workers x max_size 4, one burst of 16 users, then 10 s quiet at max_idle 600 s;
- default_pools: the defaults, 4 workers x max_size 8 on 37 usable connections (13.5 % headroom);
- fits: 2 workers x max_size 8 = min_size, bursts of 8 users (nothing to change);
- overcommit: 2 workers x max_size 8 on max_connections 13, --allow-overcommit (the server refused 4);
- lifetime: 1 worker, min_size = max_size 2, max_lifetime 3 s, 11 s of almost no load;
- uneven: the defaults again, where one worker served 55 % of the requests and two almost none.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from loadtests.analysis.advice import advice_lines, advise
from loadtests.analysis.advice.findings import declared_settings
from loadtests.analysis.headroom import headroom_of, verdict_with_headroom
from loadtests.budget import ServerLimits, allowed

DATA = Path(__file__).parent / "data" / "advice"


def recorded(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    data = json.loads((DATA / f"{name}.json").read_text())
    return data["summary"], data["manifest"]


def by_rule(summary: dict[str, Any], manifest: dict[str, Any], **options: Any) -> dict[str, dict[str, Any]]:
    return {f["rule"]: f for f in advise(summary, manifest=manifest, **options)}


def own_app(manifest: dict[str, Any], *, declared: list[str]) -> dict[str, Any]:
    """The same run as if the app were the user's own, with only `declared` settings given."""
    config = {**manifest["config"], "target_url": "http://127.0.0.1:8000"}
    return {**manifest, "config": config, "declared": declared}


# -- pool wait -----------------------------------------------------------------


def test_pool_wait_fires_on_small_pools_with_the_largest_size_that_keeps_the_headroom():
    summary, manifest = recorded("small_pools")
    found = by_rule(summary, manifest)["pool_wait"]
    pool = summary["pool"]
    assert found["severity"] == "warning"
    assert found["figure"]["requests_queued"] == pool["requests_queued"] == 230
    assert found["figure"]["requests_total"] == 387
    assert found["figure"]["mean_wait_ms"] == pytest.approx(pool["wait_ms_total"] / pool["requests_queued"], abs=0.1)
    # The busiest pool wanted 1 + 30 connections; 2 workers x 14 = 28 <= 29 = 37 less 20 %, 2 x 15 = 30 is not.
    assert found["figure"]["wanted_per_worker"] == 31
    assert (found["setting"], found["suggested"]) == ("max_size", 14)
    assert "some requests will still wait" in found["why"]
    assert "1 -> 14" in found["text"]


def test_pool_wait_suggests_what_the_busiest_pool_wanted_when_it_fits():
    summary, manifest = recorded("drain")
    found = by_rule(summary, manifest)["pool_wait"]
    wanted = max(w["pool_size_max"] + w["requests_waiting_max"] for w in summary["pool"]["per_worker"].values())
    assert (found["setting"], found["suggested"]) == ("max_size", wanted)
    limits = ServerLimits(**{k: summary["server"][k] for k in ("max_connections", "superuser_reserved_connections")})
    assert 2 * wanted <= allowed(limits, headroom_ratio=0.2)


def test_pool_wait_says_when_no_larger_pool_keeps_the_headroom():
    summary, manifest = recorded("default_pools")  # 111 of 2131 requests queued, 94 ms on average
    found = by_rule(summary, manifest)["pool_wait"]
    assert found["suggested"] is None
    assert "PgBouncer" in found["text"]


def test_pool_wait_stays_quiet_when_nothing_queued_or_the_wait_was_short():
    summary, manifest = recorded("fits")
    assert "pool_wait" not in by_rule(summary, manifest)
    summary, manifest = recorded("small_pools")
    summary["pool"]["wait_ms_total"] = summary["pool"]["requests_queued"]  # 1 ms each: served at once
    assert "pool_wait" not in by_rule(summary, manifest)


def test_pool_wait_names_an_uneven_load():
    summary, manifest = recorded("uneven")  # 4 workers: one served 986 of 1779 requests, two almost none
    found = by_rule(summary, manifest)["pool_wait"]
    assert found["figure"]["busiest_worker_requests_share"] == pytest.approx(986 / 1779, abs=1e-3)
    assert "one worker served 55 % of the requests" in found["text"] and "fewer workers" in found["why"]
    summary, manifest = recorded("small_pools")  # 2 workers: 322 of 387, less than twice an even share
    assert "busiest_worker_requests_share" not in by_rule(summary, manifest)["pool_wait"]["figure"]


def test_pool_wait_in_pools_still_growing_asks_for_min_size():
    summary, manifest = recorded("uneven")
    for worker in summary["pool"]["per_worker"].values():
        worker["pool_size_max"] = min(worker["pool_size_max"], 6)  # no pool reached max_size 8
    found = by_rule(summary, manifest)["pool_wait"]
    assert (found["setting"], found["suggested"]) == ("min_size", 8)  # 6 + 9 waiting, at most max_size
    assert "never reached max_size 8" in found["text"]


# -- headroom ------------------------------------------------------------------


def test_headroom_below_target_names_the_largest_max_size_that_keeps_it():
    summary, manifest = recorded("default_pools")  # 4 x 8 = 32 of 37 usable: 5 free, 13.5 %
    found = by_rule(summary, manifest)["headroom"]
    assert found["figure"]["free"] == 5 and found["figure"]["share"] == pytest.approx(5 / 37, abs=1e-4)
    assert (found["setting"], found["suggested"]) == ("max_size", 7)  # 4 x 7 = 28 <= 29; 4 x 8 = 32 is not
    assert "3 workers per host" in found["text"]
    assert "headroom" not in by_rule(summary, manifest, headroom_target=0.10)


def test_headroom_is_quiet_with_room_to_spare():
    summary, manifest = recorded("small_pools")  # 2 connections of 37
    assert "headroom" not in by_rule(summary, manifest)


def test_headroom_warns_without_changing_the_verdict_unless_enforced():
    summary, _ = recorded("default_pools")
    room = headroom_of(summary, other_clients=0, target=0.2)
    verdict, reasons, warnings = verdict_with_headroom("pass", ["ok"], headroom=room)
    assert (verdict, reasons) == ("pass", ["ok"]) and "below the 20 % target" in warnings[0]
    verdict, reasons, warnings = verdict_with_headroom("pass", ["ok"], headroom=room, enforce=True)
    assert verdict == "fail" and "below the 20 % target" in reasons[0] and warnings == []
    wide = headroom_of(summary, other_clients=0, target=0.1)
    assert verdict_with_headroom("pass", ["ok"], headroom=wide, enforce=True) == ("pass", ["ok"], [])


def test_headroom_counts_other_clients_but_not_the_harness():
    summary, _ = recorded("default_pools")
    assert headroom_of(summary, other_clients=0).deployed == 32  # the collector is not deployed
    assert headroom_of(summary, other_clients=3).deployed == 35


# -- the server's usable limit, failures by class --------------------------------


def test_refused_connections_are_a_failure_with_the_largest_size_that_fits():
    summary, manifest = recorded("overcommit")  # usable 10, 20 % headroom: 8, so 2 workers x 4
    found = by_rule(summary, manifest)["usable_limit"]
    assert found["severity"] == "failure" and found["figure"]["refusals"] == 4
    assert (found["setting"], found["suggested"]) == ("max_size", 4)
    assert advise(summary, manifest=manifest)[0]["rule"] == "usable_limit"  # the most severe first


def test_usable_limit_is_quiet_below_it():
    summary, manifest = recorded("default_pools")
    assert "usable_limit" not in by_rule(summary, manifest)


def test_refusals_in_the_log_count_even_when_the_samples_missed_the_peak():
    summary, manifest = recorded("overcommit")
    summary["peak_connections"] = 6  # the samples saw 6 + 1 of 10 usable; the server's log says it refused 4
    assert by_rule(summary, manifest)["usable_limit"]["severity"] == "failure"
    summary["exact"]["refusals"] = 0
    assert "usable_limit" not in by_rule(summary, manifest)
    summary["peak_connections"] = 9  # 9 + 1 of the harness fill the 10 usable: a warning without a refusal
    assert by_rule(summary, manifest)["usable_limit"]["severity"] == "warning"


def test_every_failure_class_gets_its_usual_fix():
    summary, manifest = recorded("small_pools")
    manifest["config"]["pool_check"] = False
    summary["errors_by_class"] = {
        "pool_timeout": 5, "pool_queue_full": 4, "db_too_many_connections": 3,
        "db_connection_closed": 2, "db_error": 1, "http_connection_error": 1, "other": 1,
    }
    found = by_rule(summary, manifest)
    assert found["failures:db_too_many_connections"]["severity"] == "failure"
    assert found["failures:pool_timeout"]["suggested"] == found["pool_wait"]["suggested"] == 14
    assert found["failures:pool_queue_full"]["setting"] == "max_size" and "max_waiting" in found["failures:pool_queue_full"]["text"]
    assert (found["failures:db_connection_closed"]["setting"], found["failures:db_connection_closed"]["suggested"]) == ("pool_check", True)
    assert found["failures:db_error"]["setting"] is None and "locust_failures.csv" in found["failures:db_error"]["text"]
    assert "app's log" in found["failures:http_connection_error"]["text"]
    assert found["failures:other"]["severity"] == "warning"
    assert "5 of 382 requests failed with pool_timeout" in found["failures:pool_timeout"]["text"]


def test_failures_during_injected_faults_are_expected():
    summary, manifest = recorded("fits")
    summary["errors_by_class"] = {"db_connection_closed": 7}
    summary["faults"] = [{"kind": "db-terminate-idle", "at_s": 5.0}]
    found = by_rule(summary, manifest)["failures:db_connection_closed"]
    assert found["severity"] == "info" and "injected faults" in found["why"]
    # The check was on already: keep connections from idling past a cut-off; max_lifetime is never the answer.
    assert (found["setting"], found["suggested"]) == ("max_idle", None)
    assert "max_lifetime does not close idle connections" in found["text"]


def test_no_failures_no_failure_findings():
    summary, manifest = recorded("small_pools")
    assert not [rule for rule in by_rule(summary, manifest) if rule.startswith("failures")]


def test_more_connections_than_the_pools_hold():
    summary, manifest = recorded("fits")
    assert "over_budget" not in by_rule(summary, manifest)
    summary["peak_connections"] = summary["budget"]["pools_total"] + 2
    found = by_rule(summary, manifest)["over_budget"]
    assert found["figure"] == {"peak": 18, "pools_total": 16} and "before the fork" in found["text"]


# -- lifecycle -------------------------------------------------------------------


def test_drain_longer_than_the_quiet_phase_gives_a_max_idle_and_its_reconnects():
    summary, manifest = recorded("default_pools")  # 7 connections per worker above min_size, 1.2 h at 600 s
    found = by_rule(summary, manifest)["drain"]
    assert found["severity"] == "info"
    # (7 + 1) x 1.5 s = 12 s, the quiet phase; 4 workers x 7 connections come back at each burst.
    assert (found["setting"], found["suggested"]) == ("max_idle", 1.5)
    assert found["figure"]["reconnects_per_burst"] == 28
    assert "1.2 h" in found["text"] and "28 new connections per burst" in found["text"]


def test_drain_not_done_within_the_quiet_phase_of_the_run_is_named():
    summary, manifest = recorded("drain")  # still 6 of 6 after the 10 s quiet phase
    found = by_rule(summary, manifest)["drain"]
    assert found["figure"]["bursts_not_drained"] == 1
    assert "still open after the 10 s quiet phase" in found["why"]


def test_drain_is_quiet_when_pools_do_not_grow():
    summary, manifest = recorded("fits")  # min_size = max_size
    assert "drain" not in by_rule(summary, manifest)


def test_connections_older_than_max_lifetime():
    summary, manifest = recorded("lifetime")  # 4 sessions outlived 3 s; min_size = max_size: max_idle cannot help
    found = by_rule(summary, manifest)["lifetime"]
    assert found["figure"]["sessions_over"] == 4 and found["figure"]["max_lifetime_s"] == 3.0
    assert found["setting"] is None and "pool.check()" in found["text"]
    summary["lifecycle"]["ages"]["exceeded"] = False
    assert "lifetime" not in by_rule(summary, manifest)


def test_lifetime_suggests_max_idle_when_pools_grow_above_min_size():
    summary, manifest = recorded("lifetime")
    manifest["config"].update(min_size=0, max_idle=600.0)
    found = by_rule(summary, manifest)["lifetime"]
    assert (found["setting"], found["suggested"]) == ("max_idle", 1.5)


def test_event_loop_lag_points_at_blocking_code():
    summary, manifest = recorded("fits")  # 40 ms under load: not a finding
    assert "loop_lag" not in by_rule(summary, manifest)
    worker = next(iter(summary["pool"]["per_worker"]))
    summary["pool"]["per_worker"][worker]["event_loop_lag_max_ms"] = 3001.5
    summary["pool"]["event_loop_lag_max_ms"] = 3001.5
    found = by_rule(summary, manifest)["loop_lag"]
    assert found["figure"]["worker"] == worker and "blocking call" in found["text"]


# -- the whole advice ---------------------------------------------------------------


def test_nothing_to_change_when_no_rule_fires():
    summary, manifest = recorded("fits")
    found = advise(summary, manifest=manifest)
    assert [f["rule"] for f in found] == ["nothing_to_change"]
    assert advice_lines(found) == ["info: nothing needs to change: the pools fit the server and served the load without waiting"]


def test_nothing_to_change_is_absent_when_a_rule_asks_for_a_change():
    summary, manifest = recorded("small_pools")
    assert "nothing_to_change" not in by_rule(summary, manifest)


def test_every_finding_has_the_same_keys_and_advise_is_pure():
    for path in sorted(DATA.glob("*.json")):
        summary, manifest = recorded(path.stem)
        before = copy.deepcopy((summary, manifest))
        found = advise(summary, manifest=manifest)
        assert (summary, manifest) == before
        assert found == advise(summary, manifest=manifest)
        for f in found:
            assert set(f) == {"rule", "severity", "figure", "setting", "suggested", "why", "text"}, path.stem
            assert f["text"] and f["why"], path.stem
        json.dumps(found)


def test_bad_headroom_target():
    summary, manifest = recorded("fits")
    with pytest.raises(ValueError, match="headroom_target"):
        advise(summary, manifest=manifest, headroom_target=1.0)


# -- an app the harness did not start ---------------------------------------------------


def test_own_app_settings_nobody_declared_are_not_known():
    summary, manifest = recorded("default_pools")
    found = by_rule(summary, own_app(manifest, declared=["target_url", "dsn"]))
    assert found["drain"]["suggested"] is None
    assert "not known" in found["drain"]["text"] and "--pool KIND:max=N,min=N,max_idle=S" in found["drain"]["text"]
    assert "600" not in found["drain"]["text"]  # psycopg's default max_idle is not borrowed
    assert found["pool_wait"]["suggested"] is None and "not known" in found["pool_wait"]["text"]
    assert found["headroom"]["suggested"] is None and "not known" in found["headroom"]["text"]


def test_own_app_declared_settings_are_used():
    summary, manifest = recorded("default_pools")
    declared = ["target_url", "dsn", "hosts", "workers", "max_size", "min_size", "max_idle"]
    found = by_rule(summary, own_app(manifest, declared=declared))
    assert found["headroom"]["suggested"] == 7 and found["drain"]["suggested"] == 1.5


def _pools(*pools: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"kind": "pool", "min_size": None, "max_idle": None, "max_lifetime": None, **pool} for pool in pools]


def test_own_app_pools_declared_with_pool_feed_the_advice():
    summary, manifest = recorded("default_pools")  # 4 workers, 7 connections per worker above what they keep
    declared = ["target_url", "dsn", "hosts", "workers", "pools"]
    # Two pools of a worker: 1 + 0 kept, 4 + 4 at most, max_idle 600 s each, as the sample's one pool of 8.
    manifest = {**own_app(manifest, declared=declared),
                "pools": _pools({"kind": "sync", "max_size": 4, "min_size": 1, "max_idle": 600.0},
                                {"kind": "asyncpg", "max_size": 4, "min_size": 0, "max_idle": 300.0})}
    found = by_rule(summary, manifest)
    assert "not known" not in found["drain"]["text"] and found["drain"]["suggested"] == 1.5
    assert found["headroom"]["suggested"] == 7
    # --pool-sizes gives the sizes alone: what is missing is named with the --pool that declares it.
    sized = {**manifest, "pools": _pools({"max_size": 4}, {"max_size": 4})}
    text = by_rule(summary, sized)["drain"]["text"]
    assert "not known: min_size, max_idle" in text and "--pool KIND:max=N,min=N,max_idle=S for each pool" in text
    assert "--min-size" not in text


def test_over_budget_counts_the_apps_peak_not_other_clients():
    summary, manifest = recorded("fits")
    pools_total = summary["budget"]["pools_total"]
    summary["peak_connections"] = pools_total + 3  # 3 of another client of the same role
    summary["connections"] = {"app_peak": pools_total, "other_clients": {"other:pid:9": 3}}
    assert "over_budget" not in by_rule(summary, manifest)
    summary["connections"]["app_peak"] = pools_total + 1
    assert by_rule(summary, manifest)["over_budget"]["figure"]["peak"] == pools_total + 1


def test_declared_settings_from_the_command_line_when_the_manifest_has_no_list():
    manifest = {"argv": ["poolcheck", "run", "--max-size=4", "--workers", "2", "--no-pool-check", "--fault", "worker-kill@3"]}
    assert declared_settings(manifest) == {"run", "max_size", "workers", "pool_check", "faults"} - {"run"}
    assert declared_settings({"declared": ["hosts"], "argv": ["poolcheck", "--workers", "2"]}) == {"hosts"}


# -- behind the cloud-proxy emulator -------------------------------------------
# proxy_reset, proxy_silent, proxy_checked: 2 workers x max_size 3 (min_size 1) behind a 2 s idle cut,
# quiet phases of 3 s; reset with no check, silent with no check and a 1.5 s client timeout, reset with the check.


def test_proxy_reset_without_a_check_asks_for_the_check():
    summary, manifest = recorded("proxy_reset")
    found = by_rule(summary, manifest)
    proxy = found["proxy"]
    assert (proxy["severity"], proxy["setting"], proxy["suggested"]) == ("warning", "pool_check", True)
    assert proxy["figure"]["cuts"] == summary["proxy"]["cuts"]["reset"] == 10
    assert "db_connection_closed 6" in proxy["text"] and "check=ConnectionPool.check_connection" in proxy["text"]
    # min_size 1: max_idle alone never closes the connection each pool keeps.
    assert "max_idle 1 s, under the cut, with min_size 0" in proxy["text"]
    assert found["failures:db_connection_closed"]["setting"] == "pool_check"


def test_proxy_silent_asks_for_keepalives_since_a_check_would_hang_too():
    summary, manifest = recorded("proxy_silent")
    found = by_rule(summary, manifest)
    proxy = found["proxy"]
    assert (proxy["severity"], proxy["setting"], proxy["suggested"]) == ("warning", "keepalives_idle", 1.0)
    assert "hung up to 1.548 s" in proxy["text"] and "a check would hang too" in proxy["text"]
    assert "client's timeout, 1.5 s" in proxy["why"]
    # The failures and the budget speak of the silent cut too, not of a check or a pool opened before the fork.
    assert found["failures:db_connection_closed"]["setting"] == "keepalives_idle"
    over = found["over_budget"]
    assert over["figure"]["backends_left_open"] == summary["proxy"]["backends_left_open"] == 8
    assert "tcp_keepalives_idle" in over["text"] and "fork" not in over["text"]


def test_proxy_with_the_check_and_nothing_failed_is_an_info_naming_the_backoff():
    summary, manifest = recorded("proxy_checked")
    proxy = by_rule(summary, manifest)["proxy"]
    assert proxy["severity"] == "info" and "nothing else must change" in proxy["text"]
    assert (proxy["setting"], proxy["suggested"]) == ("max_idle", 1.0)
    # max_size 3 is under the 4 dead connections a request survives at pool_timeout 5 s: no PoolTimeout to fear.
    assert proxy["figure"]["dead_in_a_row_before_pool_timeout"] == 4 and "fails with pool_timeout" not in proxy["why"]
    larger = copy.deepcopy(manifest)
    larger["config"]["max_size"] = 8
    assert "a request that meets 5 cut connections in a row reaches pool_timeout 5 s" in \
        by_rule(summary, larger)["proxy"]["why"]


def test_proxy_names_a_max_lifetime_under_the_cut_as_no_help():
    summary, manifest = recorded("proxy_reset")
    assert "max_lifetime" not in by_rule(summary, manifest)["proxy"]["why"]  # 3600 s: far above the cut
    under = copy.deepcopy(manifest)
    under["config"]["max_lifetime"] = 1.5
    why = by_rule(summary, under)["proxy"]["why"]
    assert "max_lifetime 1.5 s is under the cut and did not prevent it" in why


def test_proxy_with_max_idle_under_the_cut_suggests_keepalives_instead():
    summary, manifest = recorded("proxy_reset")
    tuned = copy.deepcopy(manifest)
    tuned["config"]["max_idle"] = 1.0
    proxy = by_rule(summary, tuned)["proxy"]
    assert "keepalives_idle=1 in the DSN" in proxy["text"] and "max_idle 1 s" not in proxy["text"]


def test_proxy_nothing_cut_says_nothing_to_change_or_not_known():
    summary, manifest = recorded("proxy_checked")
    quiet = copy.deepcopy(summary)
    quiet["proxy"].update(cuts={"reset": 0, "silent": 0}, cut_idle=0, longest_idle_s=1.4)
    proxy = by_rule(quiet, manifest)["proxy"]  # quiet phases of 3 s over a 2 s cut, yet no pause reached it
    assert proxy["severity"] == "info" and proxy["text"].endswith("-> nothing to change")
    longer_cut = copy.deepcopy(quiet)
    longer_cut["proxy"]["idle_cut_s"] = 350.0
    unknown = by_rule(longer_cut, manifest)["proxy"]  # no quiet phase came near 350 s: the run cannot tell
    assert "not known whether the pools survive it" in unknown["text"] and unknown["suggested"] == 525
    assert (unknown["severity"], unknown["setting"]) == ("info", "quiet_seconds")


def test_check_backoff_as_psycopg_pool_waits():
    from loadtests.analysis.advice.proxy_rules import check_backoff_wait, dead_connections_survived

    assert [check_backoff_wait(n) for n in range(6)] == [0, 0, 1, 3, 7, 15]
    # The D-th dead connection is checked check_backoff_wait(D - 1) s in: it must come before the deadline.
    assert [dead_connections_survived(t) for t in (0.5, 2, 5, 30)] == [2, 3, 4, 6]


# -- a connection used after it was given back (lifetime-expiry's faulty half) ----
# use_after_return: the sync pool, a dependency that leaves `with pool.connection()` before the route runs,
# max_lifetime 3 s, no check: 13 x "the connection is closed", 1 x "Explicit commit() forbidden ...".


def test_connection_used_after_return_asks_to_yield_inside_the_block_not_for_a_check():
    summary, manifest = recorded("use_after_return")
    assert manifest["config"]["pool_check"] is False  # a check is off, and still it is not the fix
    found = by_rule(summary, manifest)
    for name in ("failures:db_connection_closed", "failures:db_error"):
        assert found[name]["setting"] is None and "yield inside the block" in found[name]["text"]
        assert "a check cannot help" in found[name]["text"]
    assert found["failures:db_connection_closed"]["figure"]["failures"] == summary["errors_by_class"]["db_connection_closed"]


def test_a_server_or_proxy_cut_is_not_taken_for_use_after_return():
    summary, manifest = recorded("use_after_return")
    cut = copy.deepcopy(summary)
    cut["error_texts"] = {"db_connection_closed: consuming input failed: server closed the connection unexpectedly": 13,
                          "db_error: syntax error at or near \"SELEC\"": 1}
    found = by_rule(cut, manifest)
    assert found["failures:db_connection_closed"]["setting"] == "pool_check"  # the check does fix a cut
    assert "yield inside" not in found["failures:db_error"]["text"]


def test_proxy_advice_for_an_app_of_your_own_says_what_is_not_known():
    summary, manifest = recorded("proxy_reset")
    proxy = by_rule(summary, own_app(manifest, declared=[]))["proxy"]
    # Requests failed on cut connections: the check is asked for, its presence in the app not assumed.
    assert (proxy["setting"], proxy["suggested"]) == ("pool_check", True)
    assert "if they have none (whether they do is not known" in proxy["text"]
    assert "not known: min_size, max_size, max_idle of your app were not declared" in proxy["text"]
    assert "max_lifetime" not in proxy["why"]  # not declared: nothing said of it
    declared = own_app(manifest, declared=["pool_check", "pools"])
    declared["pools"] = [{"kind": "async", "max_size": 3, "min_size": 1, "max_idle": 600.0, "max_lifetime": 1.5}]
    told = by_rule(summary, declared)["proxy"]
    assert "max_lifetime 1.5 s is under the cut" in told["why"]


# -- a pool opened in another event loop (loop-mismatch) --------------------------
# loop_mismatch_faulty / _fixed: 2 workers x max_size 8 (min_size 1), pool_timeout 1.5 s; the faulty pools were
# opened with asyncio.run at app creation, the fixed ones in the lifespan.


def test_a_pool_that_never_grew_is_told_to_open_in_the_lifespan_not_to_grow():
    summary, manifest = recorded("loop_mismatch_faulty")
    found = by_rule(summary, manifest)
    for name in ("pool_wait", "failures:pool_timeout"):
        assert found[name]["setting"] is None and found[name]["suggested"] is None
        assert "open it in the FastAPI lifespan with await pool.open(wait=True)" in found[name]["text"]
        assert "no larger pool helps" in found[name]["text"]
    assert summary["pool"]["available_while_waiting_max"] == 0


def test_a_pool_that_grew_gets_a_size_not_the_lifespan():
    summary, manifest = recorded("loop_mismatch_fixed")
    found = by_rule(summary, manifest)["pool_wait"]
    assert found["setting"] == "max_size" and "lifespan" not in found["text"]
    # The same faulty figures, but one pool opened more connections than min_size: it grew, it is not stuck.
    summary, manifest = recorded("loop_mismatch_faulty")
    grown = copy.deepcopy(summary)
    next(iter(grown["pool"]["per_worker"].values()))["connections_opened"] = 3
    assert "lifespan" not in by_rule(grown, manifest)["pool_wait"]["text"]
    refused = copy.deepcopy(summary)
    refused["pool"]["connections_errors"] = 4  # the server refused its connections: a budget problem instead
    assert "lifespan" not in by_rule(refused, manifest)["pool_wait"]["text"]


def test_backends_a_silent_cut_left_on_the_server_ask_for_the_servers_keepalives():
    summary, manifest = recorded("proxy_silent")
    orphans = by_rule(summary, manifest)["proxy_orphans"]
    assert orphans["figure"]["backends_left_open"] == summary["proxy"]["backends_left_open"] == 8
    assert (orphans["setting"], orphans["suggested"]) == ("tcp_keepalives_idle", 1.0)
    assert "on the server, tcp_keepalives_idle=1" in orphans["text"]
    assert "proxy_orphans" not in by_rule(*recorded("proxy_reset"))  # a reset ends the backend too


def test_the_checks_backoff_is_named_for_psycopg_pools_only():
    summary, manifest = recorded("proxy_checked")
    assert "psycopg waits 0, 1, 2, 4 s" in by_rule(summary, manifest)["proxy"]["why"]
    engine = copy.deepcopy(manifest)
    engine["config"]["pool_kind"] = "sqlalchemy"  # pool_pre_ping reconnects at once
    assert "waits" not in by_rule(summary, engine)["proxy"]["why"]


# -- prepared statements behind PgBouncer's transaction pooling -------------------
# pgbouncer_prepared: the sample app's defaults (psycopg prepares after 5 executions) behind PgBouncer 1.18 in
# transaction mode: 316 of 801 requests lost their prepared statement, 100 more failed with bind errors.


def test_prepared_statements_behind_transaction_pooling_are_turned_off_not_read_about():
    summary, manifest = recorded("pgbouncer_prepared")
    found = by_rule(summary, manifest)
    lost = found["failures:db_prepared_statement_lost"]
    assert (lost["setting"], lost["suggested"]) == ("prepared_statements", False)
    assert "--no-prepared-statements" in lost["text"] and "PgBouncer" in lost["why"]
    # The bind errors of a statement met on another server connection are the same cause.
    assert found["failures:db_error"]["setting"] == "prepared_statements"
    direct = copy.deepcopy(summary)
    del direct["pgbouncer"]  # without PgBouncer, a bind error is the app's own
    assert found["failures:db_error"]["setting"] != by_rule(direct, manifest)["failures:db_error"]["setting"]
