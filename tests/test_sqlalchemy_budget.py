"""SQLAlchemy engines in the budget: pool_size + max_overflow per engine, in its own terms, and bad sizes refused."""

import subprocess
import sys

import psycopg
import pytest
from sqlalchemy import exc as sa_exc

from app.errors import DB_CONNECTION_CLOSED, DB_TOO_MANY_CONNECTIONS, POOL_TIMEOUT
from app.settings import Settings
from app.sqlalchemy_pool import classify_sqlalchemy
from conftest import assert_refused, poolcheck
from loadtests.budget import Budget, ServerLimits, describe, fits, headroom, largest_engines, largest_workers
from loadtests.config import RunConfig

# The question of the issue: 6 pods x 4 gunicorn workers, pool_size 5, max_overflow 10, max_connections 400, 3 reserved.
PODS = {"hosts": 6, "workers": 4}
SERVER = ServerLimits(max_connections=400, superuser_reserved_connections=3)


def test_an_engine_counts_pool_size_plus_max_overflow():
    budget = Budget.for_engines(pool_size=5, max_overflow=10, **PODS)
    assert budget.per_worker == 15 and budget.pool_size == 5
    assert budget.total == 6 * 4 * (5 + 10) == 360
    assert SERVER.usable == 397 and fits(budget, SERVER) and headroom(budget, SERVER) == 37
    # 397 // 24 = 16 connections per engine: one more of either kind fits, not two.
    assert [(e.pool_size, e.max_overflow) for e in largest_engines(budget, SERVER)] == [(5, 11), (6, 10)]
    assert all(fits(e, SERVER) for e in largest_engines(budget, SERVER))
    assert not fits(Budget.for_engines(pool_size=6, max_overflow=11, **PODS), SERVER)
    assert largest_workers(budget, SERVER) == 4  # 397 // (6 x 15)


def test_budget_prints_the_answer_in_sqlalchemys_terms():
    lines = describe(Budget.for_engines(pool_size=5, max_overflow=10, **PODS), SERVER)
    assert lines[0].startswith("budget 6 hosts x 4 workers x (pool_size 5 + max_overflow 10) + 0 extra = 360;")
    assert lines[0].endswith("fits (headroom 37)")
    assert lines[2] == ("largest engine for 6 hosts x 4 workers x 1 engines: 16 connections,"
                        " pool_size 5 + max_overflow 11 or pool_size 6 + max_overflow 10 (total 384)")
    assert lines[3] == "largest workers per host with pool_size 5 + max_overflow 10: 4 (total 360)"


def test_when_neither_size_can_stay_the_largest_engine_has_no_overflow():
    small = ServerLimits(max_connections=100)  # 97 // 24 = 4 per engine, below pool_size 5
    engines = largest_engines(Budget.for_engines(pool_size=5, max_overflow=10, **PODS), small)
    assert [(e.pool_size, e.max_overflow) for e in engines] == [(4, 0)]
    assert largest_engines(Budget.for_engines(pool_size=5, max_overflow=10, **PODS), ServerLimits(max_connections=20)) == []
    with pytest.raises(ValueError, match="max_overflow"):
        Budget(max_size=3, max_overflow=3, **PODS)  # pool_size 0


def test_the_command_answers_the_question_in_one_call():
    done = subprocess.run(
        [sys.executable, "-m", "loadtests.cli", "budget", "--hosts", "6", "--workers", "4", "--pool-size", "5",
         "--max-overflow", "10", "--max-connections", "400"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "= 360;" in done.stdout and "fits (headroom 37)" in done.stdout
    assert "pool_size 5 + max_overflow 11 or pool_size 6 + max_overflow 10" in done.stdout


def test_run_config_sizes_an_engine_by_its_two_numbers():
    config = RunConfig(pool_kind="sqlalchemy", pool_size=2, max_overflow=3, workers=2)
    assert config.max_size == 5 and config.budget.total == 2 * 5 + 1
    assert config.app_environment("postgresql://x")["POOL_MAX_OVERFLOW"] == "3"
    assert RunConfig(**config.model_dump()) == config  # a sweep cell rebuilds configs this way
    default = RunConfig(pool_kind="sqlalchemy")
    assert (default.pool_size, default.max_overflow, default.max_size) == (5, 10, 15)  # create_async_engine's defaults
    assert RunConfig(workers=2).app_environment("postgresql://x")["POOL_MAX_OVERFLOW"] == "0"


def test_the_app_refuses_an_overflow_it_cannot_have():
    with pytest.raises(ValueError, match="POOL_MAX_OVERFLOW"):
        Settings(DATABASE_URL="postgresql://x", POOL_KIND="sqlalchemy", POOL_MAX_SIZE=3, POOL_MAX_OVERFLOW=3)
    with pytest.raises(ValueError, match="POOL_MAX_OVERFLOW"):
        Settings(DATABASE_URL="postgresql://x", POOL_KIND="async", POOL_MAX_OVERFLOW=1)


def test_sqlalchemy_errors_are_classified():
    assert classify_sqlalchemy(sa_exc.TimeoutError("QueuePool limit of size 1 overflow 0 reached")) == POOL_TIMEOUT
    refused = psycopg.OperationalError("FATAL:  sorry, too many clients already")
    assert classify_sqlalchemy(sa_exc.OperationalError("connect", None, refused)) == DB_TOO_MANY_CONNECTIONS
    lost = sa_exc.OperationalError("SELECT 1", None, psycopg.OperationalError("boom"), connection_invalidated=True)
    assert classify_sqlalchemy(lost) == DB_CONNECTION_CLOSED


@pytest.mark.parametrize(
    ("command", "args", "named"),
    [
        ("run", ["--pool-kind", "sqlalchemy", "--pool-size", "0"], "--pool-size"),
        ("run", ["--pool-kind", "sqlalchemy", "--max-overflow", "-1"], "--max-overflow"),
        ("run", ["--pool-kind", "sqlalchemy", "--max-overflow", "5000"], "--max-overflow"),
        ("run", ["--pool-kind", "sqlalchemy", "--workers", "1", "--pool-size", "2", "--max-size", "8"], "not --max-size"),
        ("run", ["--pool-size", "2"], "--pool-kind sqlalchemy"),
        ("run", ["--pool-kind", "sqlalchemy", "--workers", "4"], "--allow-overcommit"),  # 4 x (5 + 10) > 37
        ("budget", ["--workers", "4", "--pool-size", "-1", "--max-connections", "400"], "--pool-size"),
        ("budget", ["--workers", "4", "--max-overflow", "-3", "--max-connections", "400"], "--max-overflow"),
        ("budget", ["--workers", "4", "--max-overflow", "5000", "--max-connections", "400"], "--max-overflow"),
        ("budget", ["--workers", "4", "--pool-size", "5", "--max-size", "8", "--max-connections", "400"], "not --max-size"),
        ("budget", ["--workers", "4", "--max-connections", "400"], "--pool-size"),
    ],
)
def test_bad_sizes_are_refused_in_one_line(command, args, named, results_dir):
    done = poolcheck(command, *args, results_dir=results_dir, timeout=60) if command == "run" else subprocess.run(
        [sys.executable, "-m", "loadtests.cli", command, *args], capture_output=True, text=True, timeout=60
    )
    assert_refused(done.returncode, done.stdout, done.stderr, names=named, results_dir=results_dir)
