"""`poolcheck budget`: the arithmetic with several pools, reserved slots, headroom and the largest values that fit."""

import subprocess
import sys

import pytest

from loadtests.budget import (
    Budget,
    ServerLimits,
    allowed,
    describe,
    fits,
    fits_with_headroom,
    largest_hosts,
    largest_max_size,
    largest_workers,
)


def test_several_pools_per_worker_and_both_reserved_settings():
    limits = ServerLimits(max_connections=100, superuser_reserved_connections=3, reserved_connections=5)
    budget = Budget(hosts=2, workers=3, max_size=4, pools_per_worker=3, extra_clients=4)
    assert budget.total == 2 * 3 * 3 * 4 + 4 == 76
    assert fits(budget, limits)  # 76 <= 92
    assert largest_max_size(budget, limits) == 4  # (92 - 4) // 18 = 4: 76; 5 would be 94
    assert not fits(Budget(hosts=2, workers=3, max_size=5, pools_per_worker=3, extra_clients=4), limits)
    assert largest_workers(budget, limits) == 3  # (92 - 4) // 24 = 3


def test_headroom_is_a_share_of_usable_rounded_down():
    limits = ServerLimits(max_connections=40, superuser_reserved_connections=3)
    assert allowed(limits) == 37
    assert allowed(limits, headroom_ratio=0.2) == 29  # 29.6 slots are 29
    assert allowed(ServerLimits(max_connections=13, superuser_reserved_connections=3), headroom_ratio=0.7) == 3
    assert fits_with_headroom(Budget(hosts=1, workers=4, max_size=7, extra_clients=1), limits, headroom_ratio=0.2)
    assert not fits_with_headroom(Budget(hosts=1, workers=4, max_size=8), limits, headroom_ratio=0.2)
    with pytest.raises(ValueError, match="headroom_ratio"):
        allowed(limits, headroom_ratio=1.0)


def test_largest_hosts_counts_other_clients_once():
    limits = ServerLimits(max_connections=200, superuser_reserved_connections=3, reserved_connections=2)
    one_host = Budget(hosts=1, workers=4, max_size=5, pools_per_worker=2, extra_clients=15)
    assert largest_hosts(one_host, limits) == 4  # (195 - 15) // 40
    assert largest_hosts(one_host, limits, headroom_ratio=0.2) == 3  # (156 - 15) // 40
    assert largest_hosts(Budget(hosts=1, workers=64, max_size=8), limits) == 0


def test_describe_gives_fit_headroom_and_largest_values():
    lines = describe(Budget(hosts=2, workers=4, max_size=5, pools_per_worker=2), ServerLimits(max_connections=100))
    text = "\n".join(lines)
    assert "= 80; usable 97" in text and "fits (headroom 17)" in text
    assert "headroom: 17 of 97 usable connections (17.5 %)" in text
    assert "largest max_size per pool for 2 hosts x 4 workers x 2 pools: 6 (total 96)" in text
    assert "largest workers per host with max_size 5: 4 (total 80)" in text
    assert "largest hosts of 4 workers x 2 pools x max_size 5: 2" in text


def budget_command(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "loadtests.cli", "budget", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def test_command_prints_the_arithmetic_and_exits_by_fit():
    fits_run = budget_command("--workers", "4", "--max-size", "8", "--max-connections", "40", "--reserved", "2")
    assert fits_run.returncode == 0, fits_run.stderr
    assert "= 32; usable 35 = max_connections 40 - superuser_reserved 3 - reserved 2; fits (headroom 3)" in (
        fits_run.stdout
    )
    over = budget_command("--hosts", "2", "--workers", "4", "--max-size", "8", "--pools-per-worker", "2",
                          "--max-connections", "100", "--superuser-reserved", "5", "--other-clients", "3")
    assert over.returncode == 1
    assert "= 131; usable 95" in over.stdout and "does NOT fit (headroom -36)" in over.stdout
    assert "largest max_size per pool for 2 hosts x 4 workers x 2 pools: 5 (total 83)" in over.stdout


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--workers", "4", "--max-size", "8"], "--max-connections"),
        (["--workers", "0", "--max-size", "8", "--max-connections", "40"], "--workers"),
        (["--workers", "4", "--max-size", "8", "--max-connections", "3"], "--max-connections"),
        (["--workers", "4", "--max-size", "8", "--max-connections", "40", "--dsn", "host=x"], "--dsn"),
        (["--workers", "4", "--max-size", "8", "--dsn", "postgresql://u:pw123@127.0.0.1:1/x"], "--dsn"),
    ],
)
def test_bad_input_is_one_line(args, names):
    done = budget_command(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], done.stderr
    assert "pw123" not in done.stderr + done.stdout


@pytest.mark.slow
def test_dsn_reads_the_limits_of_a_real_server(tmp_path):
    """Settings the test chose for a real server come back in the arithmetic, the password nowhere."""
    from loadtests.run.embedded_server import embedded_server

    settings = {"max_connections": 57, "superuser_reserved_connections": 4, "reserved_connections": 2}
    with embedded_server(run_dir=tmp_path, settings=settings) as server:
        done = budget_command("--workers", "4", "--max-size", "8", "--dsn", server.superuser_dsn)
    assert done.returncode == 0, done.stderr
    assert "= 32; usable 51 = max_connections 57 - superuser_reserved 4 - reserved 2; fits (headroom 19)" in done.stdout
    assert not any(p in done.stdout + done.stderr for p in server.passwords)
