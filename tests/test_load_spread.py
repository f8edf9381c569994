"""load_spread's count of pools full at once, on constructed pool_stats rows and summaries."""

from loadtests.analysis.load_spread import load_spread, spread_line


def _pool_row(stamp: str, pid: int, size: int, *, host: int = 1, most: int = 4) -> dict:
    return {"timestamp": stamp, "host": host, "pid": pid, "pool_max": most, "pool_size": size}


SUMMARY = {
    "budget": {"hosts": 1, "workers": 3, "per_worker": 4},
    "pool": {"available": True, "per_worker": {"1": {"requests_total": 30}, "2": {"requests_total": 30},
                                               "3": {"requests_total": 40}}},
}


def test_pools_full_together_counts_one_scrape_at_a_time():
    rows = [
        # scrape a: two pools full; scrape b: the third fills as one of the others shrinks: never all three.
        _pool_row("a", 1, 4), _pool_row("a", 2, 4), _pool_row("a", 3, 2),
        _pool_row("b", 1, 3), _pool_row("b", 2, 4), _pool_row("b", 3, 4),
    ]
    spread = load_spread(SUMMARY, [], app_prefix="poolcheck-app:", max_size=4, pool_rows=rows)
    assert spread["pools_full_together_max"] == 2 and spread["scrapes_all_pools_full"] == 0
    rows += [_pool_row("c", 1, 4), _pool_row("c", 2, 4), _pool_row("c", 3, 4)]
    spread = load_spread(SUMMARY, [], app_prefix="poolcheck-app:", max_size=4, pool_rows=rows)
    assert spread["pools_full_together_max"] == 3 and spread["scrapes_all_pools_full"] == 1
    assert spread["evenness"] == 0.75
    assert spread_line(spread).endswith("as the pools counted, 3 of 3 at max_size in one scrape")


def test_no_pool_counters_no_pools_figure():
    spread = load_spread(SUMMARY, [], app_prefix="poolcheck-app:", max_size=4)
    assert spread["pools_full_together_max"] is None and spread["scrapes_all_pools_full"] is None
    assert "own counters" not in spread_line(spread)
