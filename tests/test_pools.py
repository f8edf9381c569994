"""Declared pools of an app of your own, and a --server-log checked before the run: pure logic."""

from pathlib import Path

import pytest

from loadtests.config import RunConfig
from loadtests.pools import drain_idle, parse_pool, per_worker_min, shortest_lifetime

OWN = {"target_url": "http://127.0.0.1:8000", "dsn": "postgresql://watcher@127.0.0.1/shop"}


def test_pool_declarations_feed_the_budget_and_the_folder_name():
    config = RunConfig(**OWN, workers=2, pools=("sync:min=4,max=4", "async:max=4", "asyncpg:max=10,max_idle=60"))
    assert config.budget.pool_sizes == (4, 4, 10) and config.budget.pools_total == 36
    assert config.run_label() == "target-w2-p4+4+10"
    assert RunConfig(**OWN, workers=2, pool_sizes=(4, 4, 10)).run_label() == "target-w2-p4+4+10"


def test_what_was_not_declared_stays_unknown():
    pools = [parse_pool("sync:min=4,max=4"), parse_pool("asyncpg:min=1,max=10")]
    assert per_worker_min(pools) == 5
    assert drain_idle(pools) is None  # asyncpg may shrink, at a max_idle nobody gave
    assert shortest_lifetime(pools) is None
    fixed = [parse_pool("sync:min=4,max=4,max_lifetime=1800"), parse_pool("a:min=2,max=2")]
    assert drain_idle(fixed) == 0.0 and shortest_lifetime(fixed) == 1800
    assert per_worker_min([parse_pool("a:max=3")]) is None


@pytest.mark.parametrize("spec", ["sync", "sync:min=2", "sync:max=0", "sync:max=4,min=5", "sync:max=4,idle=3",
                                  "sync:max=x", "sync:max=4,max_idle=0"])
def test_bad_pool_declarations_are_refused(spec):
    with pytest.raises(ValueError):
        parse_pool(spec)


def test_pool_and_pool_sizes_do_not_mix():
    with pytest.raises(ValueError, match="not both"):
        RunConfig(**OWN, pools=("sync:max=4",), pool_sizes=(4,))
    with pytest.raises(ValueError, match="--target-url"):
        RunConfig(pools=("sync:max=4",))


def test_a_server_log_of_another_format_is_refused_before_the_run(tmp_path: Path):
    text = tmp_path / "postgresql.log"
    text.write_text("2026-01-02 03:04:05.678 UTC [42] LOG:  connection received\n")
    with pytest.raises(ValueError, match="no line of it starts with log_line_prefix '%t %c '"):
        RunConfig(**OWN, server_log=text, log_line_prefix="%t %c ")
    assert RunConfig(**OWN, server_log=text, log_line_prefix="%m [%p] ").log_line_prefix == "%m [%p] "
    torn = tmp_path / "torn.json"
    torn.write_text('{"timestamp": "2026-01-02 03:04\n')
    with pytest.raises(ValueError, match="not a PostgreSQL jsonlog or csvlog"):
        RunConfig(**OWN, server_log=torn)
    good = tmp_path / "postgresql.json"
    good.write_text('{"timestamp":"2026-01-02 03:04:05.678 UTC","pid":42,"message":"x"}\n')
    assert RunConfig(**OWN, server_log=good).server_log == good
