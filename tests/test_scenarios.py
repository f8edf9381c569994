"""Field failure scenarios for real: each one's faulty run shows the failure, its fixed run does not.

Every test runs `poolcheck scenario NAME` as a user would: two short real runs
(embedded PostgreSQL, gunicorn workers, Locust), about 25 s each here.
"""

import json
from pathlib import Path

import pytest

from conftest import RunResult, leftover_processes, poolcheck

pytestmark = pytest.mark.slow


def _scenario(name: str, results_dir: Path) -> tuple[RunResult, dict, dict, dict]:
    """Run one scenario; its record and both halves' summaries."""
    run = poolcheck("scenario", name, results_dir=results_dir, timeout=280)
    (folder,) = results_dir.glob(f"scenario-{name}-*")
    record = json.loads((folder / "scenario.json").read_text())
    summaries = {}
    for half in ("faulty", "fixed"):
        run_dir = folder / record["runs"][half]["run_dir"]
        summaries[half] = json.loads((run_dir / "summary.json").read_text())
        assert leftover_processes(RunResult(0, str(run_dir), "", folder)) == [], half
    assert (folder / "scenario.txt").read_text().strip().endswith(f"detected: {'yes' if record['detected'] else 'no'}")
    return run, record, summaries["faulty"], summaries["fixed"]


def _detected(run: RunResult, record: dict) -> None:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr
    assert record["faulty"]["failure_seen"] is True, record["faulty"]
    assert record["fixed"]["failure_seen"] is False, record["fixed"]
    assert record["detected"] is True
    assert run.stdout.splitlines()[-1].split()[-1] == "yes"  # the table's row


def _app_said(run_dir: Path, text: str) -> int:
    """Failed requests whose error the app logged with `text`: the test's own count of the gunicorn log."""
    return sum(line.count(text) for log in run_dir.glob("gunicorn-h*.log") for line in log.read_text().splitlines()
               if "poolcheck.app.errors" in line)


def test_lifetime_expiry(results_dir):
    # The field report's sync ConnectionPool, per-request conn.autocommit on a connection given back.
    run, record, faulty, fixed = _scenario("lifetime-expiry", results_dir)
    _detected(run, record)
    faulty_dir = next(results_dir.glob("scenario-*")) / record["runs"]["faulty"]["run_dir"]
    changed, closed = _app_said(faulty_dir, "can't change 'autocommit' now"), _app_said(faulty_dir, "the connection is closed")
    assert changed + closed > 0
    assert faulty["errors_by_class"].get("db_error", 0) + faulty["errors_by_class"].get("db_connection_closed", 0) \
        == faulty["requests"]["failures"] > 0
    assert "the connection is closed" in record["faulty"]["seen"]  # the team's own words, in the record
    # The one change, yielding inside the block, removes every failure; the per-request autocommit stays.
    assert fixed["requests"]["failures"] == 0 and fixed["requests"]["total"] > 100
    # What the fixed half shows by design is said to be expected in its own printed lines and its report.
    assert fixed["expected"] and not faulty["expected"]
    if fixed["lifecycle"]["ages"].get("sessions_over_max_lifetime"):
        printed = [line for line in run.stdout.splitlines()
                   if line.startswith("[lifetime-expiry fixed]") and "outlived max_lifetime" in line]
        assert printed and all("(expected: psycopg retires" in line for line in printed), printed
        fixed_dir = next(results_dir.glob("scenario-*")) / record["runs"]["fixed"]["run_dir"]
        assert "outlived max_lifetime" in (fixed_dir / "report.html").read_text().split("(expected: psycopg retires")[0]


def test_lifetime_expiry_async(results_dir):
    # The same mistake on the AsyncConnectionPool: the same two kinds of failure, the same single fix.
    run, record, faulty, fixed = _scenario("lifetime-expiry-async", results_dir)
    _detected(run, record)
    faulty_dir = next(results_dir.glob("scenario-*")) / record["runs"]["faulty"]["run_dir"]
    closed = _app_said(faulty_dir, "the connection is closed")
    assert closed > 0 and faulty["errors_by_class"].get("db_connection_closed", 0) == closed
    assert fixed["requests"]["failures"] == 0 and fixed["requests"]["total"] > 100


def test_idle_drain(results_dir):
    run, record, faulty, fixed = _scenario("idle-drain", results_dir)
    _detected(run, record)
    for half in ("faulty", "fixed"):  # the field report's server: uvicorn --workers
        run_dir = next(results_dir.glob("scenario-*")) / record["runs"][half]["run_dir"]
        assert (run_dir / "uvicorn-h1.log").exists() and not (run_dir / "gunicorn-h1.log").exists()
    (kept,) = faulty["lifecycle"]["drain"]["bursts"]
    (drained,) = fixed["lifecycle"]["drain"]["bursts"]
    assert not kept["drained"] and kept["left_at_quiet_end"] >= 2
    assert drained["drained"] and drained["drain_s"] < drained["quiet_s"]
    assert "in production (max_idle 600 s)" in record["faulty"]["seen"]


def test_worker_churn(results_dir):
    run, record, faulty, fixed = _scenario("worker-churn", results_dir)
    _detected(run, record)
    budget = fixed["budget"]["pools_total"]
    assert faulty["peak_connections"] > budget >= fixed["peak_connections"]
    for summary in (faulty, fixed):
        assert [f["kind"] for f in summary["faults"]] == ["worker-term", "worker-kill"]
    # Recycled and replaced workers: more worker pids than the two configured.
    assert len(fixed["connections"]["workers_seen"]) > 2


def _advice(summary: dict) -> dict[str, dict]:
    return {f["rule"]: f for f in summary["advice"]}


def test_loop_mismatch(results_dir):
    run, record, faulty, fixed = _scenario("loop-mismatch", results_dir)
    _detected(run, record)
    # Its own signature: the pool never grew, had nothing for the requests that waited.
    assert faulty["pool"]["pool_size_max"] < faulty["budget"]["max_size"]
    assert faulty["pool"]["available_while_waiting_max"] == 0 < faulty["pool"]["requests_waiting_max"]
    assert faulty["peak_connections"] <= 2  # one connection per worker, opened in the other loop
    assert fixed["requests"]["failures"] == 0
    # The advice names the lifespan, never a larger pool, for the faulty half only.
    assert "await pool.open(wait=True)" in _advice(faulty)["pool_wait"]["text"]
    assert "lifespan" not in _advice(fixed).get("pool_wait", {}).get("text", "")


def test_server_idle_kill(results_dir):
    run, record, faulty, fixed = _scenario("server-idle-kill", results_dir)
    _detected(run, record)
    assert faulty["errors_by_class"].get("db_connection_closed", 0) > 0
    assert fixed["requests"]["failures"] == 0 and fixed["requests"]["total"] > 50


def test_proxy_silent_drop(results_dir):
    run, record, faulty, fixed = _scenario("proxy-silent-drop", results_dir)
    _detected(run, record)
    # max_lifetime 1.5 s below the 2 s cut: the connections idle in the pool were cut all the same.
    assert faulty["proxy"]["cut_idle"] > 0
    assert faulty["errors_by_class"].get("db_connection_closed", 0) > 0
    # A request that met a cut connection hung for the client's timeout (1 s) before it failed.
    assert 1.0 <= faulty["proxy"]["hang_max_s"] < 1.5
    # check: the checks hang instead, and no request fails.
    assert fixed["proxy"]["hung_requests"] > 0 and fixed["requests"]["failures"] == 0


def test_host_vanishes(results_dir):
    run, record, faulty, fixed = _scenario("host-vanishes", results_dir)
    _detected(run, record)
    assert faulty["proxy"]["backends_left_open"] > 0 and faulty["proxy"]["cuts"]["silent"] > 0
    # idle_session_timeout 3 s: each orphan ended by the server about 1 s after the 2 s cut.
    assert fixed["proxy"]["cuts"]["silent"] > 0 and fixed["proxy"]["backend_after_cut_max_s"] < 2.0
    # The server's own keepalives are asked for where it kept the orphans, not where it ended them.
    assert _advice(faulty)["proxy_orphans"]["setting"] == "tcp_keepalives_idle"
    assert "proxy_orphans" not in _advice(fixed)


def test_blocking_loop(results_dir):
    run, record, faulty, fixed = _scenario("blocking-loop", results_dir)
    _detected(run, record)
    max_idle = fixed["lifecycle"]["drain"]["max_idle_s"]
    assert faulty["pool"]["event_loop_lag_max_ms"] >= 1000 > fixed["pool"]["event_loop_lag_max_ms"]
    # asyncpg's inactivity timer runs in the loop: late in the faulty run, on time in the fixed one.
    assert faulty["connections"]["oldest_idle_s"] > max_idle + 1.0 >= fixed["connections"]["oldest_idle_s"]


def test_overcommit(results_dir):
    run, record, faulty, fixed = _scenario("overcommit", results_dir)
    _detected(run, record)
    usable = faulty["server"]["usable"]
    # Users may all land on one worker: its 8 and the other's 1 already fill the server.
    assert faulty["peak_connections"] + 1 >= usable and faulty["verdict"] == "fail"
    assert fixed["verdict"] == "pass" and fixed["budget"]["total"] <= usable
