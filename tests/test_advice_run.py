"""Advice on a real run whose pools are too small on purpose: the pool-wait finding, checked against pool_stats.csv."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import poolcheck
from loadtests.analysis.advice import advise

pytestmark = pytest.mark.slow


def test_pools_too_small_get_a_larger_max_size_that_fits_the_server(results_dir):
    run = poolcheck(
        "run", "--workers", "2", "--max-size", "1", "--min-size", "1", "--duration", "12", "--cycles", "1",
        "--quiet-seconds", "2", "--burst-seconds", "8", "--burst-users", "24", "--baseline-users", "2",
        results_dir=results_dir,
    )
    assert run.returncode == 0, run.stderr
    summary, manifest = run.json("summary.json"), run.json("manifest.json")
    found = {f["rule"]: f for f in advise(summary, manifest=manifest)}
    assert "pool_wait" in found, found

    # The pools' own counters, read here from pool_stats.csv: each worker's last row holds its totals.
    with open(run.run_dir / "pool_stats.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    last = {row["pid"]: row for row in rows}
    queued = sum(int(float(row["requests_queued"])) for row in last.values())
    total = sum(int(float(row["requests_num"])) for row in last.values())
    wanted = max(
        max(int(float(r["pool_size"])) for r in rows if r["pid"] == pid)
        + max(int(float(r["requests_waiting"])) for r in rows if r["pid"] == pid)
        for pid in last
    )
    figure = found["pool_wait"]["figure"]
    assert (figure["requests_queued"], figure["requests_total"]) == (queued, total)
    assert queued / total >= 0.05 and figure["wanted_per_worker"] == wanted > 1

    # A larger max_size, and 2 workers of it keep 20 % of the usable connections the server reported free.
    server = json.loads((run.run_dir / "server.json").read_text())
    assert server["lc_messages"] in ("C", "POSIX") or server["lc_messages"].startswith(("C.", "en"))  # read in English
    usable = int(server["max_connections"]) - int(server["superuser_reserved_connections"]) - int(
        server.get("reserved_connections", 0)
    )
    suggested = found["pool_wait"]["suggested"]
    assert found["pool_wait"]["setting"] == "max_size"
    assert 1 < suggested <= wanted and 2 * suggested <= int(usable * 0.8)
    assert "nothing_to_change" not in found

    # summary.json holds the same advice, and the run printed it.
    assert summary["advice"] == advise(summary, manifest=manifest)
    assert found["pool_wait"]["text"] in run.stdout
