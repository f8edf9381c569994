"""A full `poolcheck run`'s headline figures against counts the test makes itself.

One real run (sync pools, settings from a `--config` file) is watched from
outside while it runs (tests/own_counts.py): the test polls pg_stat_activity
itself, reads the process table, then parses the server's log and Locust's
files with its own few lines. Each figure of summary.json must agree.
"""

from __future__ import annotations

import csv
import re

import pytest

from conftest import RunResult
from own_counts import APP_PREFIX, Watch, app_sessions, locust_failures, locust_totals, log_peak, log_sessions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_own_counts")]

WORKERS, MAX_SIZE, MIN_SIZE, MAX_IDLE = 3, 4, 1, 1.0
CONFIG = f"""
pool-kind = "sync"
workers = {WORKERS}
max-size = {MAX_SIZE}
min-size = {MIN_SIZE}
max-idle = {MAX_IDLE}
duration = 20
quiet-seconds = 3
baseline-users = 0
burst-seconds = 6
burst-users = 24
cycles = 1
sample-interval = 0.1
"""
# No users in the quiet phases: light traffic there takes connections in turn, so none stays
# unused for max_idle and the drain would depend on where the requests happened to land (a run
# here took 11.6 s instead of the rule's 3 to 4 s). Without it the pools drain by the rule alone.
# Sampling tolerance between the collector's peak and the test's own: they look at
# different instants (every 100 ms against every ~20 ms), so a peak held for less
# than a sample interval can be seen by one and missed by the other. The pools here
# hold max_size connections for seconds during the burst, so both see the plateau;
# one connection of slack covers a pool growing or shrinking between two looks.
SAMPLING_SLACK = 1


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Watch, RunResult]:
    tmp = tmp_path_factory.mktemp("own-counts")
    config = tmp / "poolcheck.toml"
    config.write_text(CONFIG)
    # The collector counts every client but itself; the test's own poller connects as the
    # superuser, so the run watches the app's role only (the exact count skips the superuser).
    watch = Watch("--config", str(config), "--watch-filter", "user=app", results_dir=tmp / "results")
    run = watch.finish()
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(watch.polls) > 200, "the test's own poller hardly ran"
    return watch, run


def test_config_file_and_sync_pools_took_effect(watched):
    watch, run = watched
    manifest = run.json("manifest.json")
    assert manifest["config"]["pool_kind"] == "sync" and manifest["config"]["max_idle"] == MAX_IDLE
    workers = watch.gunicorn_workers()
    assert len(workers) == WORKERS
    # What the workers themselves were given, read from their environment.
    assert {(w.environ["POOL_KIND"], w.environ["POOL_MAX_SIZE"]) for w in workers} == {("sync", str(MAX_SIZE))}


def test_sampled_peak_against_the_tests_own_poll_and_log(watched):
    watch, run = watched
    summary = run.json("summary.json")
    own_poll = watch.own_peak()
    own_exact = log_peak(app_sessions(log_sessions(run.run_dir)))
    sampled = summary["peak_connections"]
    print(f"sampled {sampled}, own poll {own_poll}, own exact {own_exact}, tool exact {summary['exact']['peak']}")
    assert abs(sampled - own_poll) <= SAMPLING_SLACK
    # No look at the server can see more than were open at once.
    assert own_poll <= own_exact and sampled <= own_exact
    assert own_exact <= WORKERS * MAX_SIZE
    # The samples behind the figure, read from connections.csv by the test.
    with open(run.run_dir / "connections.csv", newline="") as f:
        assert max(int(row["total"]) for row in csv.DictReader(f)) == sampled


def test_exact_peak_and_per_worker_peaks_equal_the_tests_own_parse_of_the_server_log(watched):
    watch, run = watched
    exact = run.json("summary.json")["exact"]
    sessions = app_sessions(log_sessions(run.run_dir))
    own_exact = log_peak(sessions)
    assert exact["peak"] == own_exact
    assert exact["sampling_error"] == own_exact - watch_sampled(run)
    own_by_worker = {
        name: log_peak([s for s in sessions if s.application_name == name])
        for name in {s.application_name for s in sessions}
    }
    assert exact["peak_by_worker"] == own_by_worker
    assert len(own_by_worker) == WORKERS and max(own_by_worker.values()) <= MAX_SIZE
    assert own_exact > WORKERS * MIN_SIZE  # the burst grew the pools: there was something to count


def watch_sampled(run: RunResult) -> int:
    with open(run.run_dir / "connections.csv", newline="") as f:
        return max(int(row["total"]) for row in csv.DictReader(f))


def test_workers_and_their_peaks_against_the_process_table_and_the_tests_poll(watched):
    watch, run = watched
    connections = run.json("summary.json")["connections"]
    pids = sorted(w.pid for w in watch.gunicorn_workers())
    assert connections["workers_seen"] == pids
    own = watch.own_peak_by_worker()
    assert sorted(own) == [f"{APP_PREFIX}{pid}" for pid in pids]
    for name, sampled in connections["peak_by_worker"].items():
        assert abs(sampled - own[name]) <= SAMPLING_SLACK, (name, sampled, own[name])
        assert sampled <= MAX_SIZE


def test_drain_after_the_burst_against_the_tests_own_poll(watched):
    watch, run = watched
    (burst,) = run.json("summary.json")["lifecycle"]["drain"]["bursts"]
    load = run.json("locust_load.json") if (run.run_dir / "locust_load.json").exists() else None
    assert load is not None, "the locustfile records when the shape started"
    shape = run.json("manifest.json")["shape"]
    (burst_phase,) = [p for p in shape if p["phase"] == "burst"]
    burst_end = float(load["started_at_epoch"]) + burst_phase["end_s"]
    target = WORKERS * MIN_SIZE
    back = next((p.at for p in watch.polls if p.at >= burst_end and p.total <= target), None)
    assert back is not None, "the test's own poll never saw the pools back at min_size"
    own_drain = back - burst_end
    print(f"drain: tool {burst['drain_s']} s, own poll {own_drain:.3f} s")
    assert burst["drained"] and burst["target"] == target
    # The tool reads the exact log, the test its own polls every ~20 ms (plus the query's own time).
    assert burst["drain_s"] == pytest.approx(own_drain, abs=0.15)
    # psycopg closes one unused connection per max_idle: 3 extra per worker take 3 ticks, at most one more.
    assert own_drain <= burst["load_tail_s"] + (MAX_SIZE - MIN_SIZE + 1) * MAX_IDLE + 0.5


def test_failures_add_up_with_locusts_own_files(watched):
    _, run = watched
    summary = run.json("summary.json")
    requests, failures = locust_totals(run.run_dir)
    assert summary["requests"]["total"] == requests > 100
    assert summary["requests"]["failures"] == failures == sum(locust_failures(run.run_dir).values())
    assert sum(summary["errors_by_class"].values()) == failures


def test_plain_progress_line_every_5_s_off_a_terminal(watched):
    _, run = watched
    lines = [line for line in run.stdout.splitlines() if re.match(r"\[\s*(quiet|burst|ending)\]", line)]
    elapsed = [int(re.search(r"\]\s+(\d+)/20 s", line).group(1)) for line in lines]
    assert len(lines) >= 3, run.stdout
    # Every 5 s by the runner's clock; its loop ticks every 0.5 s, and a busy machine may delay a tick.
    assert all(4 <= b - a <= 7 for a, b in zip(elapsed, elapsed[1:])), elapsed
    budget = f"/ budget {WORKERS * MAX_SIZE + 1} (pools {WORKERS * MAX_SIZE} + 1 harness) / usable 37"
    assert all(budget in line for line in lines), lines
    assert any("[ burst]" in line and "users   24" in line for line in lines), lines


def test_dsns_reach_children_through_the_environment_only(watched):
    watch, run = watched
    app_dsn = watch.gunicorn_workers()[0].environ["DATABASE_URL"]
    (collector,) = watch.seen(cmdline_has="loadtests.sources.collector")
    superuser_dsn = collector.environ["POOLCHECK_DSN"]
    passwords = {p for p in (_password(app_dsn), _password(superuser_dsn)) if p}
    assert len(passwords) == 2
    for process in watch.processes.values():
        assert not any(p in " ".join(process.cmdline) for p in passwords), process.cmdline
    assert not any(p in run.stdout + run.stderr for p in passwords)
    leaks = [f.name for f in run.run_dir.rglob("*") if f.is_file() for p in passwords if p in f.read_text(errors="replace")]
    assert leaks == []


def _password(dsn: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(dsn).get("password")


def test_every_process_the_run_started_has_stopped(watched):
    watch, _ = watched
    assert {p.name for p in watch.processes.values()} >= {"postgres"}
    assert len(watch.gunicorn_workers()) == WORKERS
    assert watch.still_alive() == []
