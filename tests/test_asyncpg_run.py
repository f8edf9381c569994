"""`poolcheck run --pool-kind asyncpg`, a plain run of the sample app on asyncpg's own pool.

Watched from outside (tests/own_counts.py): the peak the run reports and the
peak of each worker must stay within the budget and agree with the test's own
poll of pg_stat_activity and its own parse of the server's log.
"""

from __future__ import annotations

import pytest

from conftest import RunResult
from own_counts import APP_PREFIX, Watch, app_sessions, log_peak, log_sessions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_asyncpg_run")]

WORKERS, MAX_SIZE, MIN_SIZE = 2, 3, 1
# As in test_own_counts.py: the collector (every 100 ms) and the test (every ~20 ms) look at different
# instants; the pools hold max_size for seconds in the burst, one connection covers a pool changing between looks.
SAMPLING_SLACK = 1


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Watch, RunResult]:
    tmp = tmp_path_factory.mktemp("asyncpg-run")
    watch = Watch(
        "--pool-kind", "asyncpg", "--workers", str(WORKERS), "--max-size", str(MAX_SIZE), "--min-size", str(MIN_SIZE),
        "--duration", "14", "--quiet-seconds", "3", "--burst-seconds", "6", "--burst-users", "16", "--cycles", "1",
        "--watch-filter", "user=app",
        results_dir=tmp / "results",
    )
    run = watch.finish()
    assert run.returncode == 0, run.stdout + run.stderr
    assert len(watch.polls) > 100, "the test's own poller hardly ran"
    return watch, run


def test_the_workers_ran_asyncpg_pools(watched):
    watch, run = watched
    assert run.json("manifest.json")["config"]["pool_kind"] == "asyncpg"
    workers = watch.gunicorn_workers()
    assert len(workers) == WORKERS
    assert {(w.environ["POOL_KIND"], w.environ["POOL_MAX_SIZE"]) for w in workers} == {("asyncpg", str(MAX_SIZE))}


def test_peak_within_the_budget_by_the_tests_own_counts(watched):
    watch, run = watched
    summary = run.json("summary.json")
    assert summary["budget"]["pools_total"] == WORKERS * MAX_SIZE
    own_poll, own_exact = watch.own_peak(), log_peak(app_sessions(log_sessions(run.run_dir)))
    print(f"sampled {summary['peak_connections']}, own poll {own_poll}, own exact {own_exact}, "
          f"tool exact {summary['exact']['peak']}")
    assert WORKERS * MIN_SIZE < own_poll <= own_exact <= WORKERS * MAX_SIZE  # the burst grew the pools, within budget
    assert abs(summary["peak_connections"] - own_poll) <= SAMPLING_SLACK
    assert summary["exact"]["peak"] == own_exact
    own_by_worker = watch.own_peak_by_worker()
    assert sorted(own_by_worker) == sorted(f"{APP_PREFIX}{w.pid}" for w in watch.gunicorn_workers())
    assert max(own_by_worker.values()) <= MAX_SIZE
    for name, sampled in summary["connections"]["peak_by_worker"].items():
        assert abs(sampled - own_by_worker[name]) <= SAMPLING_SLACK, (name, sampled, own_by_worker[name])
