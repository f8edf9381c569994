"""Bad input: one line naming the problem, exit code 2, nothing started."""

import pytest

from conftest import assert_refused, poolcheck


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
        (["--proxy-idle-cut", "0"], "--proxy-idle-cut"),
        (["--proxy-mode", "silent"], "--proxy-idle-cut"),
        (["--proxy-idle-cut", "2", "--proxy-client-timeout", "1"], "--proxy-mode silent"),
        (["--proxy-idle-cut", "2", "--target-url", "http://127.0.0.1:1", "--dsn", "postgresql://u:pw123@127.0.0.1:1/x"],
         "--proxy-listen-port"),
        (["--proxy-listen-port", "7000"], "--proxy-idle-cut"),
        (["--proxy-idle-cut", "2", "--proxy-listen-port", "70000"], "--proxy-listen-port"),
    ],
)
def test_bad_input_is_refused_in_one_line(args, names, results_dir):
    run = poolcheck("run", *args, results_dir=results_dir, timeout=60)
    assert_refused(run.returncode, run.stdout, run.stderr, names=names, results_dir=results_dir)


def test_overcommit_refusal_gives_the_numbers(results_dir):
    run = poolcheck("run", "--workers", "4", "--max-size", "10", results_dir=results_dir, timeout=60)
    assert run.returncode == 2
    assert "= 41" in run.stderr and "usable 37" in run.stderr


def test_more_bad_input_is_refused_before_anything_starts(tmp_path, results_dir):
    import socket

    config = tmp_path / "run.toml"
    config.write_text('max-size = 4\nmax_sise = 5\n')
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            (["--app-port", str(port)], f"port {port}"),
            (["--proxy-idle-cut", "2", "--proxy-listen-port", str(port)], f"--proxy-listen-port: port {port}"),
            (["--config", str(config)], "unknown setting 'max_sise'"),
            (["--fault", "explode@3"], "unknown fault"),
            (["--fault", "worker-kill@99", "--duration", "10"], "before the end of --duration"),
            (["--dsn", "host=127.0.0.1 port=1", "--fault", "db-terminate-idle@1"], "--allow-faults"),
            (["--max-connections", "6", "--superuser-reserved-connections", "5"], "harness itself needs"),
            (["--server-setting", "nonsense"], "NAME=VALUE"),
            (["--sample-interval", "0"], "--sample-interval"),
        ]
        for args, expected in cases:
            run = poolcheck("run", *args, results_dir=results_dir, timeout=60)
            lines = run.stderr.strip().splitlines()
            assert run.returncode == 2 and len(lines) == 1 and expected in lines[0], (args, run.stderr)
    unwritable = poolcheck("run", results_dir=not_a_dir / "results", timeout=60)
    assert unwritable.returncode == 2 and "not writable" in unwritable.stderr
    assert not results_dir.exists() or [p for p in results_dir.iterdir() if not p.name.startswith(".")] == []
