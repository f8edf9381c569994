"""Thresholds, junit.xml and the shared plotly.min.js on one real run; /metrics names on the real app."""

from __future__ import annotations

import csv
import os
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import METRIC_NAMES, MULTIPROC_ENV
from conftest import SHORT_RUN, RunResult, leftover_processes, poolcheck
from own_counts import app_sessions, log_peak, log_sessions, run_folder
from loadtests.run.embedded_server import embedded_server, free_port
from loadtests.run.processes import ManagedProcess
from loadtests.sources.pool_stats import parse_metrics
from test_reports import browser, open_page  # noqa: F401 - the fixture, shared

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_thresholds_run")]

APP_DIR = Path(__file__).resolve().parent.parent / "app"
MET = ["p(95)<60s", "failures<50%", "rps>0.5", "peak_connections<=4", "pool_wait_mean<60s", "refused==0", "headroom>=20%"]
MISSED = "rps>100000"  # fails on purpose


@pytest.fixture(scope="module")
def thresholds_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """2 workers x max_size 2, seven thresholds that hold and one that cannot; plotly.js shared."""
    results = tmp_path_factory.mktemp("thresholds") / "results"
    limits = [arg for expression in [*MET, MISSED] for arg in ("--threshold", expression)]
    return poolcheck("run", *SHORT_RUN, "--workers", "2", "--max-size", "2", "--scrape-interval", "0.5",
                     "--plotlyjs", "directory", *limits, results_dir=results)


def _locust_aggregated(run_dir: Path) -> dict[str, str]:
    with open(run_dir / "locust_stats.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")


def test_a_missed_threshold_fails_the_run_and_names_itself(thresholds_run: RunResult):
    run = thresholds_run
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    summary = run.json("summary.json")
    results = {t["expression"]: t for t in summary["thresholds"]}
    assert list(results) == ["p95<60s", "failures<50%", "rps>0.5", "peak_connections<=4", "pool_wait_mean<60s",
                             "refused==0", "headroom>=20%", MISSED]
    assert [e for e, t in results.items() if not t["passed"]] == [MISSED]
    assert summary["verdict"] == "fail" and summary["reasons"][0].startswith(f"threshold {MISSED} not met: measured")
    assert f"FAIL {MISSED}: " in run.stdout and "thresholds: 7 of 8 met" in run.stdout
    assert leftover_processes(run) == []


def test_measured_values_match_the_tests_own_counts(thresholds_run: RunResult):
    run_dir = thresholds_run.run_dir
    results = {t["metric"]: t for t in thresholds_run.json("summary.json")["thresholds"]}
    locust = _locust_aggregated(run_dir)
    assert results["p95"]["measured"] == float(locust["95%"]) and results["p95"]["limit"] == 60_000
    assert results["rps"]["measured"] == round(float(locust["Requests/s"]), 2)
    assert results["failures"]["measured"] == int(locust["Failure Count"]) / int(locust["Request Count"])
    assert results["peak_connections"]["measured"] == log_peak(app_sessions(log_sessions(run_dir)))
    assert results["headroom"]["measured"] == pytest.approx((37 - 4) / 37, abs=1e-6)  # usable 40 - 3, pools 2 x 2
    # The pools' own counters, read back from the scrapes: each worker's last row
    with open(run_dir / "pool_stats.csv", newline="") as f:
        last = {row["pid"]: row for row in csv.DictReader(f)}
    waited = sum(float(r["requests_wait_ms"]) for r in last.values())
    served = sum(float(r["requests_num"]) for r in last.values())
    assert served > 0 and results["pool_wait_mean"]["measured"] == pytest.approx(waited / served, abs=1e-3)


def test_junit_file_counts_the_thresholds_and_the_verdict(thresholds_run: RunResult):
    root = ET.parse(thresholds_run.run_dir / "junit.xml").getroot()
    (suite,) = root.iter("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 1 + len(MET) + 1 and suite.get("tests") == str(len(cases))
    failed = [case for case in cases if case.find("failure") is not None]
    # The verdict's own checks held: only the threshold missed on purpose fails.
    assert [case.get("name") for case in failed] == [MISSED] and suite.get("failures") == "1"
    assert "measured" in failed[0].find("failure").get("message")


def test_report_shows_the_thresholds_and_loads_the_shared_plotly(thresholds_run: RunResult, browser):  # noqa: F811
    run_dir = thresholds_run.run_dir
    html = (run_dir / "report.html").read_text()
    assert 'id="thresholds"' in html and "NOT MET" in html and f"<code>{MISSED.replace('>', '&gt;')}</code>" in html
    assert '<script charset="utf-8" src="../plotly.min.js"></script>' in html
    shared = thresholds_run.results_dir / "plotly.min.js"
    assert shared.stat().st_size > 3_000_000 and (run_dir / "report.html").stat().st_size < 1_000_000
    drawn = open_page(browser, run_dir / "report.html", run_dir / "report.png")
    assert all(figures["points"] > 0 for figures in drawn.values()) and "timeline" in drawn


def test_a_malformed_threshold_is_bad_input_and_starts_nothing(results_dir: Path):
    for expression, says in [("p95<fast", "is not METRIC<LIMIT"), ("pool_wait_p95<50ms", "use pool_wait_mean")]:
        run = poolcheck("run", "--threshold", "p95<300ms", "--threshold", expression, results_dir=results_dir, timeout=30)
        assert run.returncode == 2 and run.stdout == ""
        assert run.stderr.startswith("poolcheck: error: --threshold: ") and says in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
        assert run_folder(results_dir) is None


# -- /metrics of the real app, in prometheus_client's multiprocess mode ----------------


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read().decode()


def _families(url: str) -> dict[str, object]:
    return {family.name: family for family in text_string_to_metric_families(_get(f"{url}/metrics"))}


def _by_pid(family) -> dict[str, float]:
    return {s.labels["pid"]: s.value for s in family.samples if s.name.endswith("_total")}


def _wait_for(what: str, condition, *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        time.sleep(0.05)


def test_metrics_are_counters_in_seconds_per_worker(tmp_path: Path):
    requests = 12
    with embedded_server(run_dir=tmp_path, settings={"max_connections": 20}) as server:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        metrics_dir = tmp_path / "metrics"
        metrics_dir.mkdir()
        env = {**os.environ, "DATABASE_URL": server.app_dsn, "POOL_KIND": "async", "POOL_MIN_SIZE": "1",
               "POOL_MAX_SIZE": "1", "POOL_TIMEOUT": "20", MULTIPROC_ENV: str(metrics_dir)}
        argv = [sys.executable, "-m", "gunicorn", "-c", str(APP_DIR / "gunicorn.conf.py"), "--workers", "2",
                "--bind", f"127.0.0.1:{port}", "app.main:create_app()"]

        def both_workers() -> bool:
            try:
                return len(_by_pid(_families(url)[METRIC_NAMES["requests_num"].removesuffix("_total")])) == 2
            except (OSError, KeyError):
                return False

        with ManagedProcess("app", argv, log_path=tmp_path / "app.log", env=env, ready=both_workers, stop_leader_only=True):
            families = _families(url)
            served = METRIC_NAMES["requests_num"].removesuffix("_total")
            waited = METRIC_NAMES["requests_wait_ms"].removesuffix("_total")
            assert families[served].type == "counter" and families[waited].type == "counter"
            assert waited == "poolcheck_pool_requests_wait_seconds" and families[waited].unit in ("", "seconds")
            assert families[METRIC_NAMES["pool_size"]].type == "gauge"
            before = sum(_by_pid(families[served]).values())
            started = time.monotonic()
            # One connection per worker, 12 requests of 300 ms: every worker's pool queues.
            with ThreadPoolExecutor(requests) as pool:
                list(pool.map(lambda _: _get(f"{url}/items/hold?ms=300"), range(requests)))
            wall = time.monotonic() - started
            _wait_for("/metrics counting the 12 requests",
                      lambda: sum(_by_pid(_families(url)[served]).values()) - before == requests)
            families = _families(url)
            per_worker = _by_pid(families[served])
            wait_s = _by_pid(families[waited])
            assert len(per_worker) == 2 and set(wait_s) == set(per_worker)
            # 12 x 300 ms through two connections: queued requests waited, in seconds, less than the wall time each.
            assert 0.3 < sum(wait_s.values()) < requests * wall
            # The scraper reads them back in pool_stats.csv's milliseconds, per worker.
            rows = parse_metrics(_get(f"{url}/metrics"))
            assert {str(pid) for pid in rows} == set(per_worker)
            for pid, stats in rows.items():
                assert stats["requests_wait_ms"] == pytest.approx(wait_s[str(pid)] * 1000, abs=0.01)
                assert stats["requests_num"] == per_worker[str(pid)]
