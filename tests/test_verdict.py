from loadtests.analysis.summary import FAIL, PASS, decide
from loadtests.failure_classes import error_class

OK_REQUESTS = {"total": 1000, "failures": 0, "failure_ratio": 0.0}


def _decide(**overrides):
    args = dict(peak=20, harness_clients=1, pools_total=32, usable=37, requests=OK_REQUESTS,
                errors={}, max_failure_ratio=0.0, samples=100)
    args.update(overrides)
    return decide(**args)


def test_pass_within_budget():
    verdict, reasons = _decide()
    assert verdict == PASS and "within" in reasons[0]


def test_fail_when_the_limit_is_reached():
    verdict, reasons = _decide(peak=36)
    assert verdict == FAIL and any("usable limit 37" in r for r in reasons)


def test_fail_when_pools_hold_more_than_their_size():
    verdict, reasons = _decide(peak=34, usable=100)
    assert verdict == FAIL and any("leaked" in r for r in reasons)


def test_fail_on_too_many_connections_and_failure_ratio():
    requests = {"total": 100, "failures": 5, "failure_ratio": 0.05}
    verdict, reasons = _decide(requests=requests, errors={"db_too_many_connections": 5})
    assert verdict == FAIL and len(reasons) == 2
    assert _decide(requests=requests, max_failure_ratio=0.1)[0] == PASS


def test_fail_without_data():
    assert _decide(samples=0)[0] == FAIL
    assert _decide(requests={"total": 0, "failures": 0, "failure_ratio": 0.0})[0] == FAIL


def test_error_class_from_locust_messages():
    assert error_class("CatchResponseError('pool_timeout')") == "pool_timeout"
    assert error_class("CatchResponseError('db_too_many_connections')") == "db_too_many_connections"
    assert error_class("ConnectionRefusedError(111)") == "other"


def test_limit_reached_fails_only_when_the_server_refused_someone():
    verdict, reasons = _decide(peak=36, pools_total=36, refusals=0)
    assert verdict == PASS and any("no headroom left" in r for r in reasons)
    verdict, reasons = _decide(peak=36, refusals=3)
    assert verdict == FAIL and any("refused 3 connection attempts" in r for r in reasons)
    assert _decide(peak=20, refusals=2)[0] == FAIL  # refusals fail a run whatever the sampled peak


def test_an_overcommitted_budget_fails_even_when_the_load_did_not_reach_it():
    verdict, reasons = _decide(peak=10, refusals=0, budget_total=41)
    assert verdict == FAIL and any("budget 41 exceeds the usable limit 37" in r for r in reasons)
    assert _decide(peak=10, refusals=0, budget_total=33)[0] == PASS
