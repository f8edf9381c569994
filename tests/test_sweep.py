"""`poolcheck sweep`: a small real sweep, and sweep lists that are bad input."""

import csv
import json
import re

import pytest

from conftest import RunResult, assert_refused, leftover_processes, poolcheck
from loadtests.budget import ServerLimits, allowed
from test_reports import browser, open_page  # noqa: F401 - the fixture, shared

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = pytest.mark.xdist_group("test_sweep")

# 2 x 2 cells of 10 s; max_connections 16 leaves 13 usable, so 2 workers x max_size 8 (+ the collector, 17) is refused.
SMALL_SWEEP = [
    "sweep", "--workers", "1,2", "--max-size", "2,8", "--max-connections", "16",
    "--duration", "10", "--quiet-seconds", "3", "--burst-seconds", "7", "--burst-users", "16",
]


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return poolcheck(*SMALL_SWEEP, results_dir=tmp_path_factory.mktemp("sweep") / "results", timeout=240)


@pytest.mark.slow
def test_sweep_runs_the_cells_that_fit_and_refuses_the_one_over_budget(small_sweep):
    assert small_sweep.returncode == 0, small_sweep.stdout[-3000:] + small_sweep.stderr
    rows = {row["key"]: row for row in small_sweep.json("sweep_summary.json")["rows"]}
    assert rows["async-w2-m8"]["status"] == "refused" and rows["async-w2-m8"]["run_dirs"] == []
    ran = [rows[key] for key in ("async-w1-m2", "async-w1-m8", "async-w2-m2")]
    for row in ran:
        assert row["status"] == "ran" and row["runs"] == 1 and row["rps"] > 0
        assert 0 < row["peak_sampled"] <= row["connections"]
    run_dirs = sorted(p for p in small_sweep.run_dir.iterdir() if not p.is_symlink() and (p / "summary.json").exists())
    assert [p.name for p in run_dirs] == sorted(d for row in ran for d in row["run_dirs"])
    for run_dir in run_dirs:
        assert leftover_processes(RunResult(0, str(run_dir), "", small_sweep.results_dir)) == []


@pytest.mark.slow
def test_sweep_recommends_a_cell_within_the_budget_and_headroom(small_sweep):
    summary = small_sweep.json("sweep_summary.json")
    choice = summary["recommendation"]
    assert choice["cell"] in {"async-w1-m2", "async-w1-m8", "async-w2-m2"}
    limits = ServerLimits(max_connections=16, superuser_reserved_connections=3)
    assert choice["connections_per_host"] == choice["workers"] * choice["max_size"]
    assert choice["connections_per_host"] <= allowed(limits, headroom_ratio=0.2)
    assert choice["hosts_within_headroom"] >= 1 and choice["reasons"]
    assert f"recommended: {choice['workers']} workers x max_size {choice['max_size']} (async)" in small_sweep.stdout


@pytest.mark.slow
def test_sweep_writes_the_table_and_an_offline_page(small_sweep):
    with open(small_sweep.run_dir / "sweep.csv", newline="") as f:
        table = {row["pool_kind"] + row["workers"] + row["max_size"]: row for row in csv.DictReader(f)}
    assert set(table) == {"async12", "async18", "async22", "async28"}
    assert table["async28"]["status"] == "refused" and table["async28"]["fits"] == "no"
    assert float(table["async18"]["rps"]) > 0 and table["async18"]["budget_total"] == "9"
    assert sum(row["recommended"] == "yes" for row in table.values()) == 1
    assert "RECOMMENDED" in small_sweep.stdout and "refused: over budget" in small_sweep.stdout
    page = (small_sweep.run_dir / "sweep.html").read_text()
    assert "sweep-heatmaps" in page and "Plotly.newPlot" in page
    assert "plotly.js v" in (small_sweep.run_dir / "plotly.min.js").read_text()[:200]
    # One plotly.min.js beside the sweep's pages, counted once: sweep.html and every run's report load it.
    assert re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", page) == ["plotly.min.js"]
    assert (small_sweep.run_dir / "plotly.min.js").stat().st_size > 3_000_000
    assert list(small_sweep.run_dir.rglob("plotly*.js")) == [small_sweep.run_dir / "plotly.min.js"]
    reports = [p for p in small_sweep.run_dir.glob("*/report.html") if not p.parent.is_symlink()]  # not `latest`
    assert len(reports) == 3 and all('src="../plotly.min.js"' in r.read_text() for r in reports)
    assert sum(p.stat().st_size for p in [small_sweep.run_dir / "sweep.html", *reports]) < 3_000_000
    plan = json.loads((small_sweep.run_dir / "sweep.json").read_text())
    assert plan["status"] == "finished"
    assert plan["axes"] == {"pool_kind": ["async"], "workers": [1, 2], "max_size": [2, 8]}


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--workers", "1,x"], "--workers"),
        (["--max-size", "2,,8"], "--max-size"),
        (["--max-size", "0,4"], "--max-size"),
        (["--pool-kind", "async,threads"], "--pool-kind"),
        (["--repeat", "0"], "--repeat"),
        (["--headroom", "100"], "--headroom"),
        (["--workers", "8", "--max-size", "8,16"], "--allow-overcommit"),
        (["--min-size", "4", "--max-size", "2,8"], "--min-size"),
    ],
)
def test_bad_sweep_lists_are_refused_in_one_line(args, names, results_dir):
    done = poolcheck("sweep", *args, results_dir=results_dir, timeout=60)
    assert_refused(done.returncode, done.stdout, done.stderr, names=names, results_dir=results_dir)


@pytest.mark.slow
def test_sweep_summary_validates_against_its_schema(small_sweep):
    """sweep_summary.json is also what `poolcheck sweep --json` prints."""
    import jsonschema

    from pathlib import Path

    schema = json.loads((Path(__file__).resolve().parents[1] / "loadtests/options/schemas/sweep.schema.json").read_text())
    summary = small_sweep.json("sweep_summary.json")
    jsonschema.validate(summary, schema, cls=jsonschema.Draft202012Validator)
    assert summary["schema_version"] == 1 and summary["repeat"] == 1


def test_sweep_pages_draw_from_the_shared_plotly_in_a_browser(small_sweep, browser):  # noqa: F811
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto((small_sweep.run_dir / "sweep.html").resolve().as_uri())
    page.wait_for_function("document.querySelector('#sweep-heatmaps .main-svg') !== null", timeout=30_000)
    cells = page.evaluate("document.getElementById('sweep-heatmaps').data.length")
    page.close()
    assert errors == [] and cells >= 3
    report = next(small_sweep.run_dir.glob("*/report.html"))
    drawn = open_page(browser, report, report.with_suffix(".png"))
    assert drawn and all(figures["points"] > 0 for figures in drawn.values())
