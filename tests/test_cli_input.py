"""Bad input: one line naming the problem, exit code 2, nothing started."""

import pytest

from conftest import poolcheck


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--workers", "0"], "--workers"),
        (["--max-size", "0"], "--max-size"),
        (["--min-size", "-1"], "--min-size"),
        (["--min-size", "9", "--max-size", "4"], "--min-size"),
        (["--pool-kind", "threads"], "--pool-kind"),
        (["--duration", "soon"], "--duration"),
        (["--max-connections", "3"], "--max-connections"),
        (["--workers", "8", "--max-size", "8"], "--allow-overcommit"),
        (["--dsn", "postgresql://u:pw123@127.0.0.1:1/x"], "--dsn"),
    ],
)
def test_bad_input_is_refused_in_one_line(args, names, results_dir):
    run = poolcheck("run", *args, results_dir=results_dir, timeout=60)
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert names in lines[0] and "Traceback" not in run.stderr
    assert "pw123" not in run.stderr + run.stdout
    started = [p for p in results_dir.iterdir() if not p.name.startswith(".")] if results_dir.exists() else []
    assert started == []


def test_overcommit_refusal_gives_the_numbers(results_dir):
    run = poolcheck("run", "--workers", "4", "--max-size", "10", results_dir=results_dir, timeout=60)
    assert run.returncode == 2
    assert "= 41" in run.stderr and "usable 37" in run.stderr
