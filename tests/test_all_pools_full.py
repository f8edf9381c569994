"""A real run that fits its budget and fills every pool at once (--spread-users), then a drain it cannot finish.

3 workers x max_size 4 (12 of 37 usable) against 48 burst users with `Connection: close`
and 600 ms holds: every worker gets more requests than its pool has connections, so all
three pools sit at max_size together. max_idle 30 s against a 3 s quiet phase after the
burst: no pool closes a connection before the load ends, and the drain advice says so. The test polls pg_stat_activity itself (tests/own_counts.py) for both figures.
"""

import csv

import pytest

from conftest import leftover_processes
from own_counts import APP_PREFIX, Watch

pytestmark = pytest.mark.slow

WORKERS, MAX_SIZE, QUIET, BURST = 3, 4, 3, 8


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    watch = Watch(
        "--workers", str(WORKERS), "--max-size", str(MAX_SIZE), "--spread-users", "--max-idle", "30",
        "--duration", str(QUIET + BURST + QUIET), "--quiet-seconds", str(QUIET), "--burst-seconds", str(BURST),
        "--burst-users", "48", "--hold-ms", "600", "--sample-interval", "0.1",
        # The test's own polling connection is the superuser's: the run counts the app's user only.
        "--watch-filter", "user=app",
        results_dir=tmp_path_factory.mktemp("all-pools-full") / "results",
    )
    return watch, watch.finish()


def test_every_pool_is_full_at_the_same_moment(watched):
    watch, run = watched
    assert run.returncode == 0, run.stdout + run.stderr
    spread = run.json("summary.json")["load_spread"]
    assert spread["pools_full_together_max"] == WORKERS and spread["scrapes_all_pools_full"] > 0
    assert spread["workers_full_together_max"] == WORKERS
    # The test's own polls of pg_stat_activity: some poll saw every worker's pool holding max_size connections.
    all_full = [p for p in watch.polls if len(p.by_app) == WORKERS and min(p.by_app.values()) >= MAX_SIZE]
    assert all_full, max((sorted(p.by_app.values()) for p in watch.polls), default=None)
    # And the pools' own file, read here with csv: one scrape in which every pid had pool_size == pool_max.
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        scrapes: dict[str, int] = {}
        for row in csv.DictReader(f):
            scrapes[row["timestamp"]] = scrapes.get(row["timestamp"], 0) + (row["pool_size"] == row["pool_max"])
    assert max(scrapes.values()) == WORKERS
    assert f"{WORKERS} of {WORKERS} at max_size in one scrape" in run.stdout
    report = (run.run_dir / "report.html").read_text()
    assert f"at most {WORKERS} of {WORKERS} pools full ({MAX_SIZE} connections) at the same moment" in report
    assert leftover_processes(run) == []


def test_a_drain_longer_than_the_quiet_phase_is_advised(watched):
    watch, run = watched
    summary = run.json("summary.json")
    (drain,) = [f for f in summary["advice"] if f["rule"] == "drain"]
    assert drain["figure"]["bursts_not_drained"] == 1 and drain["figure"]["max_idle_s"] == 30
    assert drain["setting"] == "max_idle" and 0 < drain["suggested"] < QUIET
    # The test's own count: the app's connections in its last poll before the quiet phase ended.
    load_start = float(run.json("locust_load.json")["started_at_epoch"])
    quiet_end = load_start + QUIET + BURST + QUIET
    last = max((p for p in watch.polls if p.at <= quiet_end), key=lambda p: p.at)
    own = sum(n for app, n in last.by_app.items() if app.startswith(APP_PREFIX))
    burst = summary["lifecycle"]["drain"]["bursts"][0]
    assert own > WORKERS  # more than min_size (1) per worker: the drain had not finished
    assert burst["left_at_quiet_end"] == pytest.approx(own, abs=1)
    assert f"in the run {burst['left_at_quiet_end']} of {burst['peak_total']} connections were still open" in drain["why"]
    assert "drain:" in run.stdout and "max_idle" in run.stdout
