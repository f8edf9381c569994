"""An app of your own behind the cloud-proxy emulator: `poolcheck run --target-url ... --proxy-listen-port P`.

The harness starts the relay on P; the app (tests/own_app/app.py: two fixed
psycopg pools of 2 and 3 per worker, no application_name, no check) is then
started with its DSN at 127.0.0.1:P, as a user would. The server sees only the
relay's sockets, so whose connection is whose comes from the relay's pairing
of its sockets with the app's; the test counts each worker's sockets to the
relay itself (the kernel's table) and the relay's cuts in its events file.
"""

from __future__ import annotations

import json
import subprocess
import sys

import psutil
import pytest

from conftest import RunResult, leftover_processes
from own_counts import OWN_APP, own_app_process, worker_pids as _worker_pids
from loadtests.proxy.events import listening_port
from loadtests.run.embedded_server import embedded_server, free_port
from loadtests.run.processes import ManagedProcess, wait_until
from loadtests.run.proxy_process import app_dsn_through

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("test_proxy_own_app")]

WORKERS, SIZES = 2, (2, 3)
PER_WORKER = sum(SIZES)
IDLE_CUT = 2.0


def _to_relay(pid: int, relay_port: int) -> int:
    """The test's own count: the process's TCP sockets connected to the relay."""
    try:
        return sum(1 for c in psutil.Process(pid).net_connections("inet")
                   if c.raddr and c.raddr.port == relay_port and c.status == psutil.CONN_ESTABLISHED)
    except psutil.NoSuchProcess:
        return 0


@pytest.fixture(scope="module")
def behind_relay(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("proxy-own-app")
    results = tmp / "results"
    with embedded_server(run_dir=tmp, settings={"max_connections": 40}, ready_timeout=60) as server:
        app_port, relay_port = free_port(), free_port()
        argv = [
            sys.executable, "-m", "loadtests.cli", "run",
            "--target-url", f"http://127.0.0.1:{app_port}", "--dsn", server.superuser_dsn, "--workers", str(WORKERS),
            *(arg for size in SIZES for arg in ("--pool", f"async:min={size},max={size}")),
            "--locustfile", str(OWN_APP / "locustfile.py"), "--watch-filter", "user=app",
            "--proxy-idle-cut", str(IDLE_CUT), "--proxy-listen-port", str(relay_port),
            "--duration", "14", "--cycles", "2", "--quiet-seconds", "3", "--burst-seconds", "2",
            "--burst-users", "8", "--baseline-users", "0", "--results-dir", str(results),
        ]
        runner = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # The user's side: once the relay listens, start the app with its DSN at the relay's port.
            wait_until(lambda: any(listening_port(p) == relay_port for p in results.glob("*/proxy_events.jsonl")),
                       timeout=60, what=f"the relay on port {relay_port}")
            holder: dict[str, ManagedProcess] = {}
            app = own_app_process(
                "app", name="own app behind the relay", port=app_port, workers=WORKERS, log_path=tmp / "own-app.log",
                env={"DATABASE_URL": app_dsn_through(server.app_dsn, relay_port),
                     "LOOKUP_POOL_SIZE": str(SIZES[0]), "REPORT_POOL_SIZE": str(SIZES[1])},
                ready=lambda: len(_worker_pids(holder["app"].pid)) == WORKERS and all(
                    _to_relay(pid, relay_port) == PER_WORKER for pid in _worker_pids(holder["app"].pid)),
            )
            holder["app"] = app
            with app:
                workers = _worker_pids(app.pid)
                # Before any cut, every worker holds its pools' connections through the relay.
                held = {pid: _to_relay(pid, relay_port) for pid in workers}
                stdout, stderr = runner.communicate(timeout=180)
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.communicate()
        yield RunResult(runner.returncode, stdout, stderr, results), workers, held, relay_port


def _events(run: RunResult, kind: str) -> list[dict]:
    lines = (run.run_dir / "proxy_events.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]


def test_each_workers_connections_through_the_relay_are_its_own(behind_relay):
    run, workers, held, relay_port = behind_relay
    summary = run.json("summary.json")
    assert held == {pid: PER_WORKER for pid in workers}  # the test's own count, from the kernel's sockets
    connections = summary["connections"]
    # Without the relay's pairing every backend would be the relay's, an "other" client, and no worker's.
    assert connections["peak_by_worker"] == {f"pid:{pid}": PER_WORKER for pid in sorted(workers)}
    assert set(connections["workers_seen"]) >= workers
    assert connections.get("other_clients", {}) == {}
    assert f"your app's DSN must connect to 127.0.0.1:{relay_port}" in run.stdout


def test_the_cuts_and_their_failures_are_the_runs_figures(behind_relay):
    run, *_ = behind_relay
    summary = run.json("summary.json")
    proxy = summary["proxy"]
    cuts, links = _events(run, "cut"), _events(run, "linked")
    assert proxy["cuts"] == {"reset": len(cuts), "silent": 0}
    # The fixed pools sat idle through 3 s quiet phases: every connection of the first burst was cut.
    assert len(cuts) >= WORKERS * PER_WORKER and proxy["cut_idle"] == len(cuts)
    assert proxy["connections"] == len(links) == len(_events(run, "open"))
    assert summary["requests"]["failures"] > 0 and run.returncode == 1, run.stdout[-3000:] + run.stderr
    assert leftover_processes(run) == []


def test_the_advice_asks_for_the_check_and_says_what_was_not_declared(behind_relay):
    run, *_ = behind_relay
    (advice,) = [f for f in run.json("summary.json")["advice"] if f["rule"] == "proxy"]
    assert (advice["setting"], advice["suggested"]) == ("pool_check", True)
    assert "whether they do is not known" in advice["text"]
    # The declared pools are fixed (min = max): max_idle closes none of them, so keepalives are the way to
    # keep them under the cut; psycopg's default max_idle is never borrowed for the undeclared one.
    assert "keepalives_idle=1 in the DSN" in advice["text"]
    assert "max_idle" not in advice["text"] and "600" not in advice["text"]
    assert f"{advice['severity']}: {advice['text']}" in run.stdout
