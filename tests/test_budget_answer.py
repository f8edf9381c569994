"""`poolcheck budget` answers the production question: the deploy's peak, the headroom, one answer line."""

import subprocess
import sys

import pytest

from loadtests.budget import Budget, ServerLimits
from loadtests.budget_answer import answer, answer_lines

SERVER = ServerLimits(max_connections=400, superuser_reserved_connections=3)  # 397 usable


def budget_command(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "loadtests.cli", "budget", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_a_rolling_deploy_of_six_pods_of_sqlalchemy_engines():
    """6 pods x 4 workers, pool_size 5 + max_overflow 10: 360 fit 397; a 7th pod during a deploy makes 420."""
    plan = Budget.for_engines(hosts=6, workers=4, pool_size=5, max_overflow=10)
    found = answer(plan, SERVER, headroom_ratio=0.2, surge_hosts=1)
    # The test's own arithmetic: 397 usable, 20 % kept free leaves int(317.6) = 317; 7 x 4 engines share it.
    assert (found.peak_hosts, found.keep, found.per_worker) == (7, 317, 317 // 28) == (7, 317, 11)
    assert not found.fits_now and not found.keeps_headroom  # 420 > 397
    lines = answer_lines(plan, SERVER, headroom_ratio=0.2, surge_hosts=1)
    assert "during a rolling deploy (+1 host): budget 7 hosts" in lines[0] and "= 420; usable 397" in lines[0]
    assert lines[-1] == (
        "answer: set pool_size + max_overflow <= 11, e.g. pool_size 5 + max_overflow 6, with 7 hosts x 4 workers"
        " during a deploy, keeping 20 % headroom of 397 usable (now pool_size 5 + max_overflow 10 = 15:"
        " your setting does NOT fit)"
    )


def test_without_a_deploy_the_same_pods_fit_but_miss_the_headroom():
    plan = Budget.for_engines(hosts=6, workers=4, pool_size=5, max_overflow=10)
    found = answer(plan, SERVER, headroom_ratio=0.2)
    assert found.fits_now and not found.keeps_headroom and found.per_worker == 317 // 24 == 13
    assert answer(plan, SERVER, headroom_ratio=0.0).keeps_headroom  # 360 <= 397
    assert "does NOT keep the headroom" in answer_lines(plan, SERVER, headroom_ratio=0.2)[-1]


def test_the_answer_in_max_size_for_several_pools_and_for_pools_of_several_sizes():
    limits = ServerLimits(max_connections=100, superuser_reserved_connections=3)  # 97 usable, 77 with 20 % free
    several = Budget(hosts=2, workers=4, max_size=5, pools_per_worker=2, extra_clients=5)
    assert answer_lines(several, limits, headroom_ratio=0.2)[-1].startswith(
        "answer: set max_size <= 4 per pool (2 per worker) with 2 hosts x 4 workers"  # (77 - 5) // 8 = 9 a worker
    )
    sizes = Budget(hosts=2, workers=4, max_size=10, pools_per_worker=3, pool_sizes=(4, 4, 10))
    line = answer_lines(sizes, limits, headroom_ratio=0.2)[-1]
    assert "set a worker's pools to <= 9 connections together, e.g. 2+2+5" in line and "now 4+4+10 = 18" in line


def test_no_pool_size_fits_says_what_else_to_change():
    line = answer_lines(Budget(hosts=1, workers=40, max_size=3), ServerLimits(max_connections=20), headroom_ratio=0.2)[-1]
    assert line.startswith("answer: no pool size fits with 1 host x 40 workers")


def test_command_the_production_question_in_one_line():
    done = budget_command("--hosts", "6", "--workers", "4", "--pool-size", "5", "--max-overflow", "10",
                          "--max-connections", "400", "--superuser-reserved", "3", "--surge-hosts", "1")
    assert done.returncode == 1, done.stderr  # 420 > 397 during the deploy
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("answer: set pool_size + max_overflow <= 11") and "7 hosts x 4 workers during a deploy" in last
    fixed = budget_command("--hosts", "6", "--workers", "4", "--pool-size", "5", "--max-overflow", "6",
                           "--max-connections", "400", "--surge-hosts", "1")
    assert fixed.returncode == 0 and "20 % headroom kept: 308 <= 317 of 397 usable" in fixed.stdout
    assert "your setting fits" in fixed.stdout


def test_command_headroom_is_a_warning_unless_asked_to_fail():
    args = ("--workers", "4", "--max-size", "8", "--max-connections", "40")  # 32 of 37: 13.5 % free
    warned = budget_command(*args)
    assert warned.returncode == 0 and "20 % headroom not kept: 32 > 29" in warned.stdout
    assert "answer: set max_size <= 7 with 1 host x 4 workers" in warned.stdout
    assert budget_command(*args, "--fail-on-headroom").returncode == 1
    assert budget_command(*args, "--fail-on-headroom", "--headroom", "10").returncode == 0  # 32 <= int(33.3)


def test_command_pool_sizes():
    done = budget_command("--workers", "4", "--pool-sizes", "4,4,10", "--hosts", "2", "--max-connections", "200")
    assert done.returncode == 0, done.stderr
    assert "x pools of 4+4+10 + 0 extra = 144" in done.stdout
    assert "largest max_size per pool" not in done.stdout  # which pool? the answer line says it instead
    assert "set a worker's pools to <= 19 connections together" in done.stdout  # int(197 * 0.8) = 157 // 8


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--pool-sizes", "4,4", "--max-size", "3"], "--max-size"),
        (["--pool-sizes", "4,x"], "--pool-sizes"),
        (["--max-size", "4", "--surge-hosts", "-1"], "--surge-hosts"),
        (["--max-size", "4", "--headroom", "100"], "--headroom"),
    ],
)
def test_command_bad_input_is_one_line(args, names):
    done = budget_command("--workers", "2", "--max-connections", "40", *args)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and names in done.stderr and "Traceback" not in done.stderr
