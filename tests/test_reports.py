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
REPORT_CHARTS = {"timeline", "latency", "lifecycle"}  # and "failures" when a request failed, "pool" when scraped

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
    expected |= {"failures"} if short_run.json("summary.json")["requests"]["failures"] else set()
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
    # compare's default --plotlyjs directory: one plotly.min.js beside the page
    assert '<script charset="utf-8" src="plotly.min.js"></script>' in html and len(html) < 1_000_000
    assert (page.parent / "plotly.min.js").stat().st_size > 3_000_000


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
        assert first["limits"] == {"budget": 2 * 3 + 1, "usable": 37, "max_connections": 40, "pools": 6,
                                   "other_clients": 0, "pools_name": "pools",
                                   "budget_text": "budget 7 (pools 6 + 1 harness)"}
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
        # The tab's live chart: connections against the run's budget, and the page's address as a link.
        tab.wait_for_selector("#poolcheck-live iframe", timeout=15_000)
        link = tab.locator("#poolcheck-live a").first
        assert link.evaluate("a => a.href") == f"{base}/poolcheck" and _get(f"{base}/poolcheck")[0] == 200
        chart = next(f for f in tab.frames if "embed=1" in f.url)
        chart.wait_for_function(
            "() => { const p = document.querySelector('.js-plotly-plot');"
            " return p && p.data && p.data.some(t => (t.x || []).length > 5)"
            " && p.layout.shapes.some(s => s.y0 === 7); }",
            timeout=20_000,
        )
        tab.screenshot(path=str(tmp_path / "database-tab.png"), full_page=True)
        tab.goto(f"{base}/poolcheck")
        tab.wait_for_function(
            "() => { const p = document.querySelector('.js-plotly-plot');"
            " return p && p.data && p.data.some(t => (t.x || []).length > 5); }",
            timeout=20_000,
        )
        tab.close()
        assert errors == []
        # Once the shape is over: the close-down counted down, the load's figures at zero.
        wait_until(lambda: json.loads(_get(data_url)[1])["closes_in_s"] is not None, timeout=40, what="the load's end")
        wait_until(lambda: json.loads(_get(data_url)[1])["rps"] == 0, timeout=10, what="requests/s back at 0")
        ended = json.loads(_get(data_url)[1])
        assert 0 < ended["closes_in_s"] <= 30 and ended["users"] == 0
        stats = json.loads(_get(f"{base}/stats/requests")[1])
        (table,) = [t for t in stats["extended_stats"] if t["key"] == "poolcheck-database"]
        assert any(row["figure"] == "the load is over: this UI closes in" for row in table["data"])
    finally:
        watch.runner.send_signal(signal.SIGINT)  # no need to wait out the UI's linger
        run = watch.finish(timeout=60)
    assert run.returncode == 130, run.stdout + run.stderr
    assert f"Locust web UI: {base}" in run.stdout
    assert watch.still_alive() == []


# -- workers' colours, empty charts, the per-worker share ---------------------------


def plotly_data(html: str, name: str) -> list[dict]:
    """The traces of one chart of a page, as plotly.js receives them."""
    at = html.find(f'"plot-{name}",')
    if at < 0:
        return []
    return json.JSONDecoder().raw_decode(html[at + len(f'"plot-{name}",'):].lstrip())[0]


def test_each_worker_has_one_colour_from_one_palette():
    from loadtests.present.workers import share_rows, unevenness, worker_colors

    colors = worker_colors(["812", "97", "5000"])
    assert list(colors) == ["97", "812", "5000"] and len(set(colors.values())) == 3
    assert worker_colors(["5000", "97", "812"]) == colors  # keyed by pid, not by the order met
    summary = {"pool": {"per_worker": {"97": {"requests_total": 2180}, "812": {"requests_total": 815}}}}
    rows = share_rows(summary, connections={"97": [2, 4], "812": [1, 1]})
    assert [(r["pid"], r["requests"], round(r["requests_share"], 2), r["connections_mean"]) for r in rows] == [
        ("97", 2180, 0.73, 3.0), ("812", 815, 0.27, 1.0)]
    assert "(97) served 2180 requests (73%, 1.5 x an even share)" in unevenness(rows)


@pytest.mark.slow
def test_report_colours_each_worker_alike_on_every_chart_and_draws_no_empty_chart(short_run: RunResult):
    html = (short_run.run_dir / "report.html").read_text()
    summary = short_run.json("summary.json")
    by_worker = [t for t in plotly_data(html, "timeline") if t.get("stackgroup") == "stacked by worker"]
    pool = plotly_data(html, "pool")
    assert by_worker and pool
    stacked = {t["name"]: t["line"]["color"] for t in by_worker}
    for trace in pool:
        assert trace["line"]["color"] == stacked[trace["name"]], trace["name"]
        assert trace["legendgroup"] == trace["name"]  # a legend entry hides or isolates the worker everywhere
    assert len(set(stacked.values())) == len(stacked) == 3
    assert sorted(t["name"] for t in pool if t.get("showlegend", True)) == sorted(stacked)
    # The workers' table: each worker's requests as its pool counted them, the same colour again.
    for pid, worker in summary["pool"]["per_worker"].items():
        assert re.search(rf'background: {stacked[f"worker {pid}"]}"></span>worker {pid}</td><td class="num">'
                         rf'{worker["requests_total"]}<', html), pid
    # No failures: no failures chart, and the page says so.
    if summary["requests"]["failures"] == 0:
        assert 'id="chart-failures"' not in html and "No failures" in html
    else:
        assert 'id="chart-failures"' in html
    assert "More figures from the summary" not in html and "<h2>Configuration</h2>" in html


@pytest.mark.slow
def test_requests_per_second_line_up_with_the_apps_own_count(short_run: RunResult):
    """The report's requests/s against the app's pools' own count of requests (pool_stats.csv), second by second."""
    from loadtests.analysis.timeline import read_series
    from loadtests.run_folder import epoch

    series = read_series(short_run.run_dir)
    load = series.load
    scrapes: dict[int, list[tuple[float, float]]] = {}
    for row in RunFolder(short_run.run_dir).pool_stats:
        scrapes.setdefault(row["pid"], []).append((epoch(row["timestamp"]) - series.t0, row["requests_num"]))

    def app_count(at: float) -> float:
        """The app's requests served by `at` (seconds of the load), each worker's count interpolated."""
        total = 0.0
        for points in scrapes.values():
            before = [p for p in points if p[0] <= at] or points[:1]
            after = [p for p in points if p[0] >= at] or points[-1:]
            (t0, n0), (t1, n1) = before[-1], after[0]
            total += n0 if t1 == t0 else n0 + (n1 - n0) * (at - t0) / (t1 - t0)
        return total

    intervals = [(load.rate_t[i - 1], load.rate_t[i], load.rps[i] * (load.rate_t[i] - load.rate_t[i - 1]))
                 for i in range(1, len(load.rate_t))]

    def mismatch(shift: float) -> float:
        return sum(abs(count - (app_count(end + shift) - app_count(start + shift))) for start, end, count in intervals)

    served = sum(count for _, _, count in intervals)
    errors = {shift: mismatch(shift) for shift in (-1.0, -0.5, 0.0, 0.5, 1.0)}
    print(f"requests {served:.0f}; mismatch by shift of the app's count: {errors}")
    assert served > 300
    # A line drawn early (or late) would match the app's count later (or earlier). The pools are scraped once
    # a second, which blurs the app's count over half a second: a line right on time may match it about as well
    # half a second off, never clearly better there, and always better than a second off. In all, the counts
    # differ by less than 30 % of the requests: the blur came to 23 % once in a CI run of the whole suite, and a
    # line counted twice or not at all is off by 100 %.
    assert errors[0.0] < min(errors[-1.0], errors[1.0]) and errors[0.0] < 0.3 * served, errors
    assert errors[0.0] <= 1.2 * min(errors[-0.5], errors[0.5]), errors
