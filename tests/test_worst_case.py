"""Real runs: the worst case on demand (--spread-users) and headroom that fails a run when asked (--fail-on-headroom)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import SHORT_RUN, leftover_processes, poolcheck
from own_counts import locust_totals, log_messages

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_worst_case")]

# The server's own words for a refused connection: past max_connections, or into the reserved slots.
REFUSALS = ("remaining connection slots are reserved", "sorry, too many clients already")


TIME_WAIT = "06"  # /proc/net/tcp's state of a closed TCP connection waiting out its 60 s


def closed_connections(port: int) -> int:
    """TCP connections to or from `port` closed in the last minute, as the kernel lists them."""
    closed = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        ports = {int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)}
        closed += fields[3] == TIME_WAIT and port in ports
    return closed


@pytest.fixture(scope="module")
def worst_case(tmp_path_factory):
    """3 workers x max_size 7 = 21 against 17 usable (16 for the app beside the collector), every worker loaded."""
    run = poolcheck(
        "run", "--workers", "3", "--max-size", "7", "--max-connections", "20", "--allow-overcommit", "--spread-users",
        "--duration", "15", "--quiet-seconds", "3", "--burst-seconds", "8", "--burst-users", "40", "--hold-ms", "400",
        results_dir=tmp_path_factory.mktemp("worst-case") / "results",
    )
    # Counted at once, while the app's closed connections still wait out their minute in TIME_WAIT.
    run.closed = closed_connections(urlsplit(run.json("manifest.json")["app_urls"][0]).port)
    return run


def test_the_worst_case_opens_a_connection_per_request(worst_case):
    """Keep-alive users would close about 40 connections (one each); --spread-users closes one per request."""
    requests, _ = locust_totals(worst_case.run_dir)
    assert worst_case.closed >= 0.8 * requests > 100


def test_an_overcommitted_budget_fails_with_refusals_in_the_worst_case(worst_case):
    assert worst_case.returncode == 1, worst_case.stdout + worst_case.stderr
    summary = worst_case.json("summary.json")
    own = sum(log_messages(worst_case.run_dir, text) for text in REFUSALS)
    assert own > 0 and summary["exact"]["refusals"] == own
    assert f"the server refused {own} connection attempts" in "\n".join(summary["reasons"])
    assert leftover_processes(worst_case) == []


def test_the_worst_case_reaches_every_worker_and_says_how_evenly(worst_case):
    spread = worst_case.json("summary.json")["load_spread"]
    served = spread["requests_by_worker"]
    assert spread["workers"] == 3 and len(served) == 3 and min(served.values()) > 0
    # Each request takes a connection from its worker's pool: the pools' counters against Locust's own total
    # (the pools also count the readiness checks and requests still running when Locust stopped counting).
    requests, _ = locust_totals(worst_case.run_dir)
    assert sum(served.values()) == pytest.approx(requests, rel=0.2)
    assert spread["evenness"] == pytest.approx(min(served.values()) / max(served.values()), abs=0.01)
    assert spread["evenness"] > 0.4
    assert "load spread over 3 workers" in worst_case.stdout


def test_headroom_below_target_fails_only_when_asked(tmp_path):
    """3 workers x max_size 4 = 12 of 37 usable leaves 67.6 % free: below a 70 % target on purpose."""
    run = poolcheck("run", *SHORT_RUN, "--workers", "3", "--max-size", "4", "--headroom", "70", "--fail-on-headroom",
                    results_dir=tmp_path / "results")
    assert run.returncode == 1, run.stdout + run.stderr
    summary = run.json("summary.json")
    # The test's own arithmetic, from the limits the server reported (server.json) and the pools asked for.
    server = run.json("server.json")
    usable = int(server["max_connections"]) - int(server["superuser_reserved_connections"]) - int(
        server.get("reserved_connections", 0))
    assert summary["verdict"] == "fail" and summary["warnings"] == []
    keep = int(usable * 0.3)  # usable less 70 %, rounded down
    (reason,) = summary["reasons"]
    assert reason.startswith(
        f"headroom {usable - 12} of {usable} usable connections ({(usable - 12) / usable * 100:.1f} %) is below the"
        f" 70 % target: 12 connections with every pool full, at most {keep} keep it; max_size {keep // 3} or"
    )
    # The same folder without --fail-on-headroom: a pass, and the headroom a warning.
    copy = tmp_path / "copy"
    shutil.copytree(run.run_dir, copy, ignore=shutil.ignore_patterns("postgres"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["fail_on_headroom"] = False
    (copy / "manifest.json").write_text(json.dumps(manifest))
    again = subprocess.run([sys.executable, "-m", "loadtests.cli", "summarize", str(copy)],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    warned = json.loads((copy / "summary.json").read_text())
    assert warned["verdict"] == "pass" and "below the 70 % target" in warned["warnings"][0]
