"""Own app and distributed load: the budget of several pools, Locust's options, and bad input."""

from pathlib import Path

import pytest

from conftest import assert_refused
from loadtests.budget import Budget, ServerLimits, explain
from loadtests.cli import main
from loadtests.addresses import parse_bind
from loadtests.config import RunConfig
from loadtests.run.locust_options import (
    BUNDLED_LOCUSTFILE,
    SHAPE_ONLY_LOCUSTFILE,
    locustfile_argument,
    master_options,
    worker_argv,
)

OWN = {"target_url": "http://127.0.0.1:8000", "dsn": "postgresql://watcher@127.0.0.1/shop"}


def test_pools_of_different_sizes_add_up_per_worker():
    budget = Budget(hosts=2, workers=3, max_size=10, pools_per_worker=3, pool_sizes=(4, 4, 10), extra_clients=1)
    assert budget.per_worker == 18 and budget.pools_total == 108 and budget.total == 109
    line = explain(budget, ServerLimits(max_connections=100))
    assert "pools of 4+4+10" in line and "= 109" in line and "does NOT fit" in line


def test_config_feeds_pool_sizes_and_pools_per_worker_to_the_budget():
    assert RunConfig(**OWN, workers=2, pool_sizes=(4, 4, 10)).budget.pools_total == 36
    assert RunConfig(**OWN, workers=2, pools_per_worker=2, max_size=5).budget.pools_total == 20
    assert RunConfig(workers=2, max_size=5).budget.pools_total == 10


def test_master_bind_forms():
    assert parse_bind("0.0.0.0:5557").local_host == "127.0.0.1"
    assert parse_bind("10.0.0.5:6000").local_host == "10.0.0.5"
    bind = parse_bind("[::]:5557")
    assert (bind.host, bind.port, str(bind)) == ("::", 5557, "[::]:5557")
    for bad in ("5557", "host:", "host:70000", ":5557"):
        with pytest.raises(ValueError):
            parse_bind(bad)


def test_master_waits_for_every_worker_and_workers_dial_it(tmp_path):
    bind = parse_bind("0.0.0.0:5557")
    options = master_options(bind, expect_workers=3, max_wait_s=60)
    assert options[options.index("--expect-workers") + 1] == "3"
    assert options[options.index("--master-bind-host") + 1] == "0.0.0.0"
    argv = worker_argv(bind, locustfile=locustfile_argument(None), logfile=tmp_path / "w.log")
    assert argv[argv.index("--master-host") + 1 :][:3] == ["127.0.0.1", "--master-port", "5557"]
    assert "--worker" in argv and "--csv" not in argv  # only the master writes statistics


def test_own_locustfile_runs_beside_the_burst_shape(tmp_path):
    users = tmp_path / "users.py"
    assert locustfile_argument(None) == str(BUNDLED_LOCUSTFILE)
    assert locustfile_argument(users) == f"{SHAPE_ONLY_LOCUSTFILE},{users}"
    assert SHAPE_ONLY_LOCUSTFILE.is_file()


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--target-url", "http://127.0.0.1:1"], "--target-url"),
        (["--target-url", "ftp://127.0.0.1", "--dsn", "postgresql://u:pw123@127.0.0.1:1/x"], "--target-url"),
        (["--pool-sizes", "4,x"], "--pool-sizes"),
        (["--pool-sizes", "4,4"], "--pool-sizes"),
        (["--watch-filter", "host=db1"], "--watch-filter"),
        (["--locustfile", "no-such-locustfile.py"], "--locustfile"),
        (["--locust-master-bind", "5557", "--locust-workers", "1"], "--locust-master-bind"),
        (["--locust-remote-workers", "2"], "--locust-remote-workers"),
    ],
)
def test_bad_input_is_refused_in_one_line(args, names, results_dir: Path, capsys):
    # In-process (the CLI's own entry point): these are refused before anything could start.
    with pytest.raises(SystemExit) as exited:
        main(["run", *args, "--results-dir", str(results_dir)])
    out, err = capsys.readouterr()
    assert_refused(exited.value.code, out, err, names=names, results_dir=results_dir)
