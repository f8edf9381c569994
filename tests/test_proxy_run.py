"""The cloud-proxy emulator inside `poolcheck run`: the app's connections go through it, the run shows its cuts.

Quiet phases of 3 s against a 2 s idle cut: the connections each pool keeps
idle over a quiet phase are cut, and the first requests of the next burst
meet them. Each figure is checked against the test's own count of the
relay's events file and Locust's failures file.
"""

from __future__ import annotations

import json

import pytest

from conftest import RunResult, leftover_processes, poolcheck
from own_counts import locust_failures

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_proxy_run")]

IDLE_CUT = 2.0
CLIENT_TIMEOUT = 1.5
LOAD = ["--workers", "2", "--max-size", "3", "--min-size", "1", "--duration", "12", "--cycles", "2",
        "--quiet-seconds", "3", "--burst-seconds", "2", "--burst-users", "8", "--baseline-users", "0",
        "--proxy-idle-cut", str(IDLE_CUT)]


def _events(run: RunResult, kind: str) -> list[dict]:
    lines = (run.run_dir / "proxy_events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def _proxy_advice(run: RunResult) -> dict:
    (found,) = [f for f in run.json("summary.json")["advice"] if f["rule"] == "proxy"]
    assert f"{found['severity']}: {found['text']}" in run.stdout  # printed at the end of the run too
    return found


def _closed_failures(run: RunResult) -> int:
    return sum(n for error, n in locust_failures(run.run_dir).items() if "db_connection_closed" in error)


@pytest.fixture(scope="module")
def reset_unchecked(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return poolcheck("run", *LOAD, "--no-pool-check", results_dir=tmp_path_factory.mktemp("reset") / "results")


@pytest.fixture(scope="module")
def silent_unchecked(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return poolcheck("run", *LOAD, "--no-pool-check", "--proxy-mode", "silent",
                     "--proxy-client-timeout", str(CLIENT_TIMEOUT),
                     results_dir=tmp_path_factory.mktemp("silent") / "results")


@pytest.fixture(scope="module")
def reset_checked(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return poolcheck("run", *LOAD, "--pool-check", results_dir=tmp_path_factory.mktemp("checked") / "results")


def test_reset_cuts_fail_requests_on_connections_idle_in_the_pool(reset_unchecked):
    run = reset_unchecked
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    summary = run.json("summary.json")
    proxy = summary["proxy"]
    cuts = _events(run, "cut")
    assert proxy["cuts"] == {"reset": len(cuts), "silent": 0} and cuts
    assert proxy["cut_idle"] == sum(e["last_direction"] != "up" for e in cuts)
    closed = _closed_failures(run)
    assert closed > 0 and summary["errors_by_class"] == {"db_connection_closed": closed}
    assert f"proxy (reset cut after {IDLE_CUT:g} s idle)" in run.stdout
    assert f"{len(cuts)} cut" in run.stdout
    assert "Cloud-proxy emulator" in (run.run_dir / "report.html").read_text()
    # Only the app went through the relay: the collector's connection is never among its connections.
    assert proxy["connections"] == len(_events(run, "open"))
    assert leftover_processes(run) == []
    assert run.json("manifest.json")["pids"]["proxy"]
    advice = _proxy_advice(run)
    assert (advice["severity"], advice["setting"], advice["suggested"]) == ("warning", "pool_check", True)
    assert advice["figure"]["cuts"] == len(cuts) and "check=ConnectionPool.check_connection" in advice["text"]


def test_silent_cuts_hang_requests_until_the_client_gives_up(silent_unchecked):
    run = silent_unchecked
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr
    proxy = run.json("summary.json")["proxy"]
    hangs = _events(run, "hang")
    assert proxy["cuts"]["silent"] == len(_events(run, "cut")) > 0
    assert proxy["hung_requests"] == len(hangs) > 0
    hung = [e["hang_s"] for e in _events(run, "end") if e["side"] == "client" and "hang_s" in e]
    assert proxy["hang_max_s"] == max(hung)
    assert CLIENT_TIMEOUT <= proxy["hang_max_s"] < CLIENT_TIMEOUT + 0.5
    # A hang ends when the client gives up, or (a check at the end of the run) when the app stops.
    given_up = proxy["hangs_ended_by"].get("client_timeout", 0)
    assert given_up > 0 and given_up + proxy["hangs_ended_by"].get("eof", 0) == len(hangs)
    # Each request the client gave up on failed: none of them was answered.
    assert _closed_failures(run) >= given_up
    # The server never heard of the cuts: their backends stayed, above what the pools hold; the verdict says
    # so, rather than that the pools leaked.
    assert proxy["backends_left_open"] > 0
    reasons = " ".join(run.json("summary.json")["reasons"])
    assert "kept the backends of connections the proxy cut silently" in reasons and "leaked" not in reasons
    assert "requests hung into a silent cut" in run.stdout
    assert leftover_processes(run) == []
    # A check would hang the same way: the advice is keepalives under the cut, not the check.
    advice = _proxy_advice(run)
    assert (advice["severity"], advice["setting"], advice["suggested"]) == ("warning", "keepalives_idle", IDLE_CUT / 2)
    assert advice["figure"]["hung_requests"] == len(hangs) and "the pool's check hangs the same way" in advice["why"]


def test_pool_check_replaces_cut_connections_before_a_request_gets_one(reset_checked):
    run = reset_checked
    summary = run.json("summary.json")
    assert len(_events(run, "cut")) > 0  # the proxy did cut idle connections
    assert summary["requests"]["failures"] == 0 and summary["requests"]["total"] > 50, run.stdout[-2000:]
    assert run.returncode == 0
    # Nothing failed: an info, the check's cost and what would spare it (the pools grow above min_size 1).
    advice = _proxy_advice(run)
    assert advice["severity"] == "info" and "nothing else must change" in advice["text"]
    assert (advice["setting"], advice["suggested"]) == ("max_idle", IDLE_CUT / 2)


@pytest.fixture(scope="module")
def silent_max_idle(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    # The third fix: no pooled connection idles as long as the cut. min_size 0, so max_idle may close them all;
    # (3 + 1) x 0.3 s = 1.2 s to close a worker's 3, under the 2 s cut (psycopg's first tick may see them busy).
    load = [arg if arg != "1" or LOAD[i - 1] != "--min-size" else "0" for i, arg in enumerate(LOAD)]
    return poolcheck("run", *load, "--no-pool-check", "--max-idle", "0.3", "--proxy-mode", "silent",
                     "--proxy-client-timeout", str(CLIENT_TIMEOUT),
                     results_dir=tmp_path_factory.mktemp("silent-max-idle") / "results")


def test_max_idle_under_the_cut_keeps_every_pooled_connection_from_reaching_it(silent_max_idle):
    run = silent_max_idle
    summary = run.json("summary.json")
    proxy = summary["proxy"]
    assert run.json("manifest.json")["config"]["min_size"] == 0
    assert _events(run, "cut") == [] and proxy["hung_requests"] == 0
    assert summary["requests"]["failures"] == 0 and summary["requests"]["total"] > 50, run.stdout[-2000:]
    # Every connection the relay saw paused less than the cut; the pools reconnected for each burst instead.
    assert proxy["longest_idle_uncut_s"] < IDLE_CUT
    assert proxy["connections"] > 2 * 3
    advice = _proxy_advice(run)
    assert advice["severity"] == "info" and advice["text"].endswith("-> nothing to change")
    assert run.returncode == 0, run.stdout[-3000:]
