"""Run report, comparison and live view: pure logic, then real runs opened in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import SHORT_RUN, RunResult, poolcheck, require
from own_counts import Watch
from loadtests.present.compare import HIGHER, LOWER, PASS_FIRST, Row
from loadtests.load.records import FailureCounter
from loadtests.present.pages import flatten
from loadtests.sources.csv_tail import CsvFollower
from loadtests.analysis.folder import RunFolder
from loadtests.analysis.summary import slowest_drain_s
from loadtests.analysis.timeline import Connections, Load, RunSeries
from loadtests.present.report import drain_rows
from loadtests.run_folder import MANIFEST, write_json

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = pytest.mark.xdist_group("test_reports")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
REPORT_CHARTS = {"timeline", "latency", "failures", "lifecycle"}

# -- pure logic ------------------------------------------------------------------


def test_best_value_and_deltas_against_the_first_run():
    rps = Row("requests/s", (100.0, 125.0, 80.0), HIGHER)
    assert rps.best() == {1}
    assert rps.delta(1) == "+25, +25.0%"
    assert rps.delta(0) == ""
    peaks = Row("peak", (12, 8, 8, None), LOWER)
    assert peaks.best() == {1, 2}
    assert peaks.delta(3) == ""
    assert Row("same", (3, 3), LOWER).best() == set()
    assert Row("verdict", ("fail", "pass"), PASS_FIRST).best() == {1}
    assert Row("max_size", (4, 2)).best() == set()


def _burst(drain_s: float | None, **figures: float) -> dict[str, float | bool | None]:
    return {"burst_end_s": 30.0, "drained": drain_s is not None, "drain_s": drain_s, "quiet_s": 7.0, **figures}


def test_report_and_compare_show_the_drain_the_summary_measured(tmp_path):
    # Bursts end at 10 s and 25 s of the load; the summary counts on the collector's clock (burst_end_s).
    shape = [{"phase": "quiet", "start_s": 0.0, "end_s": 5.0}, {"phase": "burst", "start_s": 5.0, "end_s": 10.0},
             {"phase": "quiet", "start_s": 10.0, "end_s": 20.0}, {"phase": "burst", "start_s": 20.0, "end_s": 25.0}]
    write_json(tmp_path / MANIFEST, {"run_id": "r", "shape": shape})
    summary = {"lifecycle": {"drain": {"bursts": [_burst(4.5), _burst(None)]}}}
    rows = drain_rows(RunSeries(RunFolder(tmp_path), summary, 0.0, Connections(), Load()))
    assert [(r["burst_end_load_s"], r["drain_s"]) for r in rows] == [(10.0, 4.5), (25.0, None)]
    assert slowest_drain_s(summary) == 4.5
    assert slowest_drain_s({"lifecycle": {"drain": {"bursts": [_burst(None)]}}}) is None
    assert slowest_drain_s({}) is None  # a summary older than the lifecycle section


def test_failure_counter_writes_each_class_once_per_second(tmp_path):
    class Error:
        def __init__(self, error: str, occurrences: int) -> None:
            self.error, self.occurrences = error, occurrences

    class Stats:
        errors: dict[str, Error] = {}

    path = tmp_path / "failures.csv"
    counter = FailureCounter(path, stats=Stats)
    Stats.errors = {"a": Error("CatchResponseError('pool_timeout')", 3)}
    counter.flush()
    counter.flush()  # nothing new: no row
    Stats.errors["b"] = Error("CatchResponseError('db_too_many_connections')", 2)
    Stats.errors["a"].occurrences = 4
    counter.flush()
    rows = [line.split(",")[1:] for line in path.read_text().splitlines()[1:]]
    assert rows == [["pool_timeout", "3"], ["db_too_many_connections", "2"], ["pool_timeout", "1"]]


def test_csv_follower_waits_for_a_whole_line(tmp_path):
    path = tmp_path / "growing.csv"
    path.write_text("a,b\n1,2\n3,")
    follower = CsvFollower(path)
    assert follower.new_rows() == [{"a": "1", "b": "2"}]
    with open(path, "a") as f:
        f.write("4\n")
    assert follower.new_rows() == [{"a": "3", "b": "4"}]
    assert follower.new_rows() == []


def test_nested_summary_figures_flatten_in_order():
    assert flatten({"pool": {"wait_ms_total": 12.5, "per_worker": {"7": {"max": 2}}}, "ok": True}) == [
        ("pool.wait_ms_total", "12.5"), ("pool.per_worker.7.max", "2"), ("ok", "true"),
    ]


# -- real runs in a real browser -----------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "loadtests.cli", *args], capture_output=True, text=True, timeout=120)



@pytest.fixture(scope="module")
def browser():
    require(CHROMIUM.exists(), "Debian's chromium is not installed: `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


_DRAWN = """
(chart) => {
  const plot = chart.querySelector('.js-plotly-plot');
  if (!plot || !plot.data) return {points: 0, paths: 0};
  const points = plot.data.filter(t => t.visible !== false).reduce((n, t) => n + (t.x || []).length, 0);
  const paths = [...plot.querySelectorAll('.scatterlayer path, .barlayer path')]
    .filter(p => (p.getAttribute('d') || '').length > 10).length;
  return {points, paths};
}
"""


def open_page(browser, page_path: Path, screenshot: Path) -> dict[str, dict[str, int]]:
    """Load a page from disk; fail on any console error; return what each chart drew."""
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(page_path.resolve().as_uri())
    page.wait_for_function(
        "[...document.querySelectorAll('.chart')].every(c => c.querySelector('.main-svg'))", timeout=30_000
    )
    drawn = {chart.get_attribute("data-chart"): chart.evaluate(_DRAWN) for chart in page.query_selector_all(".chart")}
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    assert errors == []
    return drawn


@pytest.mark.slow
def test_report_is_written_at_the_end_of_the_run(short_run: RunResult):
    report = short_run.run_dir / "report.html"
    assert f"report: {report}" in short_run.stdout
    html = report.read_text()
    assert 'class="verdict pass"' in html and "usable 37 = max_connections 40" in html
    assert re.search(r"<script[^>]*\bsrc=", html) is None  # plotly.js is inline: the page works offline
    assert str(short_run.run_dir) not in html and str(short_run.results_dir) not in html


@pytest.mark.slow
def test_report_regenerated_from_a_copied_folder_is_identical(short_run: RunResult, tmp_path: Path):
    copy = tmp_path / "copied-run"
    shutil.copytree(short_run.run_dir, copy, ignore=shutil.ignore_patterns("report.html", "*.png"))
    done = cli("report", str(copy))
    assert done.returncode == 0, done.stderr
    assert (copy / "report.html").read_text() == (short_run.run_dir / "report.html").read_text()


@pytest.mark.slow
def test_report_draws_every_chart_in_a_browser(short_run: RunResult, browser):
    drawn = open_page(browser, short_run.run_dir / "report.html", short_run.run_dir / "report.png")
    expected = REPORT_CHARTS | ({"pool"} if (short_run.run_dir / "pool_stats.csv").exists() else set())
    assert set(drawn) == expected
    for name, figures in drawn.items():
        assert figures["points"] > 0 and figures["paths"] > 0, (name, figures)
    assert (short_run.run_dir / "report.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def compared(short_run: RunResult, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, subprocess.CompletedProcess[str], Path]:
    """A second short run (max_size 2) compared with the shared one: the table and the page."""
    tmp_path = tmp_path_factory.mktemp("compare")
    other = poolcheck("run", *SHORT_RUN, "--workers", "3", "--max-size", "2", results_dir=tmp_path / "results")
    assert other.returncode in (0, 1), other.stdout + other.stderr
    page = tmp_path / "compare.html"
    return other, cli("compare", str(short_run.run_dir), str(other.run_dir), "--out", str(page)), page


@pytest.mark.slow
def test_compare_two_runs_of_different_max_size(short_run: RunResult, compared):
    """The terminal table and the page's table: no browser needed."""
    other, done, page = compared
    assert done.returncode == 0, done.stderr
    peaks = [short_run.json("summary.json")["peak_connections"], other.json("summary.json")["peak_connections"]]
    assert re.search(r"max_size\s*│\s*4\s*│\s*2\b", done.stdout), done.stdout
    peak_row = next(line for line in done.stdout.splitlines() if "peak connections (sampled)" in line)
    assert re.search(rf"│\s*{peaks[0]}\s*\*?\s*│\s*{peaks[1]}\b", peak_row), peak_row
    html = page.read_text()
    assert "<td>max_size</td>" in html and all(f">{p}" in html for p in peaks)


@pytest.mark.slow
def test_compare_page_draws_both_runs_in_a_browser(compared, browser):
    other, done, page = compared
    assert done.returncode == 0, done.stderr
    drawn = open_page(browser, page, other.run_dir / "compare.png")
    assert drawn["overlay"]["points"] > 0 and drawn["overlay"]["paths"] >= 4  # two runs x (connections, rps)


# -- the live view, during a real run ---------------------------------------------------


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status, response.read().decode()
    except (OSError, urllib.error.URLError):
        return 0, ""


@pytest.mark.slow
def test_live_view_over_http_and_in_a_browser(tmp_path: Path, browser):
    """`--web-ui`: Locust's UI with the Database tab, and /poolcheck, while a real run loads the app."""
    from loadtests.run.embedded_server import free_port
    from loadtests.run.processes import wait_until

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    watch = Watch(
        "--web-ui", "--web-port", str(port), "--workers", "2", "--max-size", "3", "--duration", "20",
        "--quiet-seconds", "3", "--burst-seconds", "6", "--burst-users", "12", "--watch-filter", "user=app",
        results_dir=tmp_path / "results",
    )
    try:
        data_url = f"{base}/poolcheck/data"
        wait_until(lambda: len(json.loads(_get(data_url)[1] or "{}").get("samples", {}).get("t", [])) >= 5,
                   timeout=90, what="the live view's samples")
        # Over HTTP: the page, its data against the run's own budget, and the figures Locust's UI polls.
        status, page = _get(f"{base}/poolcheck")
        assert status == 200 and "/poolcheck/plotly.js" in page and "cdn" not in page.lower()
        first = json.loads(_get(data_url)[1])
        assert first["limits"] == {"budget": 2 * 3 + 1, "usable": 37, "max_connections": 40}
        wait_until(lambda: json.loads(_get(data_url)[1])["samples"]["t"][-1] > first["samples"]["t"][-1] + 1,
                   timeout=10, what="new samples in the live view")
        live = json.loads(_get(data_url)[1])
        # The view's connections against the test's own poll of pg_stat_activity, over the same time.
        assert 0 < live["peak"] <= watch.own_peak() + 1 <= 2 * 3 + 1, (live["peak"], watch.own_peak())
        stats = json.loads(_get(f"{base}/stats/requests")[1])
        (table,) = [t for t in stats["extended_stats"] if t["key"] == "poolcheck-database"]
        rows = {row["figure"]: row["value"] for row in table["data"]}
        assert rows["budget"] == "7" and rows["usable"] == "37" and rows["live chart"] == "/poolcheck"

        # In Chromium: the Database tab of Locust's own UI, then the live chart.
        errors: list[str] = []
        tab = browser.new_page(viewport={"width": 1366, "height": 900})
        tab.on("pageerror", lambda error: errors.append(str(error)))
        tab.goto(base)
        tab.get_by_role("tab", name="Database").click()
        tab.get_by_text("max_connections").wait_for(timeout=15_000)
        assert tab.get_by_role("cell", name="budget", exact=True).count() == 1
        tab.screenshot(path=str(tmp_path / "database-tab.png"))
        tab.goto(f"{base}/poolcheck")
        tab.wait_for_function(
            "() => { const p = document.querySelector('.js-plotly-plot');"
            " return p && p.data && p.data.some(t => (t.x || []).length > 5); }",
            timeout=20_000,
        )
        tab.close()
        assert errors == []
    finally:
        watch.runner.send_signal(signal.SIGINT)  # no need to wait out the UI's linger
        run = watch.finish(timeout=60)
    assert run.returncode == 130, run.stdout + run.stderr
    assert f"Locust web UI: {base}" in run.stdout
    assert watch.still_alive() == []
