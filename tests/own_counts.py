"""Counts a test makes itself, from sources the harness's own code never reads for it.

- `Watch` runs `poolcheck run` as a user would and, while it runs, records every
  process it starts (the process table) and polls `pg_stat_activity` itself, as
  the embedded server's superuser over its Unix socket, several times faster
  than the collector samples.
- `log_sessions` reads the server's jsonlog with a few lines of its own
  (`json.loads` per line), not with loadtests/sources/server_log.py.
- `locust_failures` reads Locust's own failures file.
- `Watch(probe=PATH)` also sends the app a request of its own every ~50 ms
  while the run runs, and records when each ended and whether it succeeded.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import psutil
import psycopg

from conftest import RunResult

APP_PREFIX = "poolcheck-app:"
BUSY_STATES = ("active", "idle in transaction", "idle in transaction (aborted)")
_APP_ACTIVITY = (
    "SELECT application_name, coalesce(state, '') FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND application_name LIKE 'poolcheck-app:%'"
)


@dataclass(frozen=True)
class Poll:
    """One look at pg_stat_activity: when (epoch, the query's midpoint), and the app's backends."""

    at: float
    by_app: dict[str, int]
    busy: int

    @property
    def total(self) -> int:
        return sum(self.by_app.values())


@dataclass
class SeenProcess:
    pid: int
    started: float
    ppid: int
    name: str
    cmdline: list[str]
    environ: dict[str, str] = field(default_factory=dict)
    first_seen: float = 0.0
    last_seen: float = 0.0

    def alive(self) -> bool:
        try:
            p = psutil.Process(self.pid)
            return abs(p.create_time() - self.started) < 0.05 and p.status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False


@dataclass(frozen=True)
class Probe:
    """One request of the test's own to the app: when it ended (epoch) and whether it got a 200."""

    at: float
    ok: bool


class Watch:
    """A `poolcheck run` in its own process, watched from outside until it ends."""

    def __init__(self, *args: str, results_dir: Path, poll_interval: float = 0.02, probe: str = "") -> None:
        self.results_dir = results_dir
        self.poll_interval = poll_interval
        argv = [sys.executable, "-m", "loadtests.cli", "run", *args, "--results-dir", str(results_dir)]
        self.runner = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.processes: dict[tuple[int, float], SeenProcess] = {}
        self.polls: list[Poll] = []
        self.poll_errors = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        self.probes: list[Probe] = []
        self._prober = threading.Thread(target=self._probe, args=(probe,), daemon=True) if probe else None
        if self._prober is not None:
            self._prober.start()

    def finish(self, timeout: float = 240) -> RunResult:
        try:
            stdout, stderr = self.runner.communicate(timeout=timeout)
        finally:
            self._done.set()
            self._thread.join(timeout=10)
            if self._prober is not None:
                self._prober.join(timeout=10)
        return RunResult(self.runner.returncode, stdout, stderr, self.results_dir)

    # -- while the run runs --------------------------------------------------------

    def _watch(self) -> None:
        conn: psycopg.Connection | None = None
        next_ps = 0.0
        while not self._done.is_set() and self.runner.poll() is None:
            now = time.monotonic()
            if now >= next_ps:
                self._look_at_processes()
                next_ps = now + 0.1
            conn = conn if conn is not None and not conn.closed else self._connect()
            if conn is not None:
                try:
                    t0 = time.time()
                    rows = conn.execute(_APP_ACTIVITY).fetchall()
                    t1 = time.time()
                    by_app = Counter(name for name, _ in rows)
                    busy = sum(1 for _, state in rows if state in BUSY_STATES)
                    self.polls.append(Poll((t0 + t1) / 2, dict(by_app), busy))
                except psycopg.Error:
                    self.poll_errors += 1
                    conn.close()
                    conn = None
            time.sleep(self.poll_interval)
        if conn is not None:
            conn.close()

    def _probe(self, path: str) -> None:
        """GET `path` of the first app host, one request at a time, from when the load starts."""
        url = None
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy
        while not self._done.is_set() and self.runner.poll() is None:
            if url is None:
                url = _app_url(self.results_dir)
                time.sleep(0.05)
                continue
            try:
                with direct.open(url.rstrip("/") + path, timeout=3) as response:
                    ok = response.status == 200
            except (OSError, urllib.error.URLError):  # HTTPError (5xx), refused, reset, timed out
                ok = False
            self.probes.append(Probe(time.time(), ok))
            time.sleep(0.05)

    def _look_at_processes(self) -> None:
        try:
            children = psutil.Process(self.runner.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return
        now = time.time()
        for child in children:
            try:
                with child.oneshot():
                    key = (child.pid, child.create_time())
                    seen = self.processes.get(key)
                    cmdline = child.cmdline()
                    # A child seen between its fork and its exec still shows its parent's command line:
                    # it is read again until the exec has replaced it (a busy machine widens that gap).
                    if seen is None or seen.cmdline != cmdline:
                        name = child.name()
                        environ = child.environ() if name != "postgres" else {}
                        first_seen = now if seen is None else seen.first_seen
                        seen = SeenProcess(child.pid, key[1], child.ppid(), name, cmdline, environ, first_seen)
                        self.processes[key] = seen
                    seen.last_seen = now
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue

    def _connect(self) -> psycopg.Connection | None:
        """The run's embedded server, as its superuser over the Unix socket (trust): no password needed."""
        run_dir = run_folder(self.results_dir)
        if run_dir is None or not (run_dir / "postgres_dir.txt").exists():
            return None
        try:
            port = json.loads((run_dir / "manifest.json").read_text())["postgres"]["port"]
            socket_dir = (run_dir / "postgres_dir.txt").read_text().strip() + "/data"
            return psycopg.connect(
                host=socket_dir, port=port, user="postgres", dbname="postgres",
                application_name="test-own-count", autocommit=True, connect_timeout=2,
            )
        except (OSError, ValueError, KeyError, psycopg.Error):
            return None

    # -- what was seen ---------------------------------------------------------------

    def seen(self, name: str = "", *, cmdline_has: str = "") -> list[SeenProcess]:
        return [
            p for p in self.processes.values()
            if (not name or p.name == name) and cmdline_has in " ".join(p.cmdline)
        ]

    def gunicorn_workers(self) -> list[SeenProcess]:
        """Processes forked by a gunicorn master the runner started (the process table's word, not the run's)."""
        masters = {p.pid for p in self.seen(cmdline_has="gunicorn") if p.ppid == self.runner.pid}
        return sorted((p for p in self.processes.values() if p.ppid in masters), key=lambda p: p.started)

    def postmasters(self) -> list[SeenProcess]:
        return sorted((p for p in self.seen("postgres") if p.ppid == self.runner.pid), key=lambda p: p.started)

    def still_alive(self) -> list[str]:
        return [f"{p.pid} {' '.join(p.cmdline)[:80]}" for p in self.processes.values() if p.alive()]

    def own_peak(self) -> int:
        return max((p.total for p in self.polls), default=0)

    def own_peak_by_worker(self) -> dict[str, int]:
        peaks: dict[str, int] = {}
        for poll in self.polls:
            for app, n in poll.by_app.items():
                peaks[app] = max(peaks.get(app, 0), n)
        return peaks


def _app_url(results_dir: Path) -> str | None:
    """The first app host's URL, once the manifest says the load has started."""
    run_dir = run_folder(results_dir)
    try:
        manifest = json.loads((run_dir / "manifest.json").read_text()) if run_dir is not None else {}
    except (OSError, ValueError):
        return None
    urls = manifest.get("app_urls") or []
    return urls[0] if urls and manifest.get("load_started_at") else None


def run_folder(results_dir: Path) -> Path | None:
    found = sorted(p for p in results_dir.glob("2*") if p.is_dir()) if results_dir.exists() else []
    return found[-1] if found else None


# -- the server's log, read by the test ----------------------------------------------


@dataclass
class LogSession:
    start: float
    end: float | None
    application_name: str
    user: str


def log_epoch(stamp: str) -> float:
    # The embedded server logs in UTC with milliseconds: "2026-01-02 03:04:05.678 UTC".
    return datetime.strptime(stamp.removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=timezone.utc).timestamp()


def log_records(run_dir: Path) -> list[dict]:
    records = []
    for line in (run_dir / "postgres" / "postgresql.json").read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def log_sessions(run_dir: Path) -> list[LogSession]:
    """Every authorized session of the app and others, from "connection authorized" to "disconnection"."""
    sessions: dict[str, LogSession] = {}
    for record in log_records(run_dir):
        message = record.get("message", "")
        key = record.get("session_id")
        if message.startswith("connection authorized:"):
            app = re.search(r"application_name=(\S+)", message)
            sessions[key] = LogSession(log_epoch(record["timestamp"]), None, app.group(1) if app else "", record.get("user", ""))
        elif message.startswith("disconnection:") and key in sessions:
            sessions[key].end = log_epoch(record["timestamp"])
    return list(sessions.values())


def log_peak(sessions: list[LogSession]) -> int:
    """The most sessions open at once. At an equal millisecond a session's end counts before another's
    start: the log cannot show that they overlapped."""
    events = sorted([(s.start, 1) for s in sessions] + [(s.end, -1) for s in sessions if s.end is not None])
    peak = count = 0
    for _, delta in events:  # (t, -1) sorts before (t, 1)
        count += delta
        peak = max(peak, count)
    return peak


def app_sessions(sessions: list[LogSession]) -> list[LogSession]:
    return [s for s in sessions if s.application_name.startswith(APP_PREFIX)]


def log_messages(run_dir: Path, text: str) -> int:
    return sum(1 for r in log_records(run_dir) if text in r.get("message", ""))


# -- Locust's own files ----------------------------------------------------------------


def locust_failures(run_dir: Path) -> Counter[str]:
    """Failures by the class named in Locust's failure message, from locust_failures.csv."""
    counts: Counter[str] = Counter()
    with open(run_dir / "locust_failures.csv", newline="") as f:
        for row in csv.DictReader(f):
            found = re.search(r"'([a-z_0-9]+)'", row["Error"])
            counts[found.group(1) if found else row["Error"]] += int(row["Occurrences"])
    return counts


def locust_failures_between(run_dir: Path, start: float, end: float) -> int:
    """Failures that ended in the whole epoch seconds from `start` to `end`, from Locust's own per-second
    counts (locust_requests_by_second.csv, its `num_fail_per_sec`)."""
    with open(run_dir / "locust_requests_by_second.csv", newline="") as f:
        return sum(int(r["failures"]) for r in csv.DictReader(f) if int(start) <= int(r["second"]) <= int(end))


def locust_totals(run_dir: Path) -> tuple[int, int]:
    """(requests, failures) of Locust's Aggregated row in locust_stats.csv."""
    with open(run_dir / "locust_stats.csv", newline="") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return int(row["Request Count"]), int(row["Failure Count"])


# -- recovery after a fault, as the test's own requests and poll saw it ---------------


# Locust's history rows are 1 s apart and stamped up to a second after the requests they count, so the
# tool's "requests succeed again" lands on a whole-second row; the test's probe lands within ~50 ms.
RECOVERY_TOLERANCE_S = 1.5


def own_recovery(watch: Watch, fault: dict, *, until: float, origin: float, pools_total: int) -> float | None:
    """Seconds until the test's own requests to the app succeed again (none fails after it before `until`)
    and the test's own poll of pg_stat_activity shows the app's connections within its pools' budget."""
    nominal = fault["load_start_epoch"] + fault["at_s"]  # the fault was due here on the load's clock
    actual = origin + fault["elapsed_s"]  # and recorded here, once done, on the collector's clock
    probes = [p for p in watch.probes if nominal < p.at < until]
    last_failed = max((i for i, p in enumerate(probes) if not p.ok), default=-1)
    requests_ok = next((p.at for p in probes[last_failed + 1:] if p.ok), None)
    conns_ok = next((p.at for p in watch.polls if p.at >= actual and p.total <= pools_total), None)
    if requests_ok is None or conns_ok is None:
        return None
    return max(requests_ok - nominal, conns_ok - actual, 0.0)


OWN_APP = Path(__file__).resolve().parent / "own_app"


def own_app_process(module: str, *, name: str, port: int, workers: int, env: dict[str, str], log_path: Path,
                    ready: Callable[[], bool]):
    """An app of tests/own_app/ under gunicorn with uvicorn workers, as a team would run it; not started."""
    from loadtests.run.processes import ManagedProcess

    return ManagedProcess(
        name,
        [sys.executable, "-m", "gunicorn", "--worker-class", "uvicorn_worker.UvicornWorker",
         "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--chdir", str(OWN_APP), f"{module}:app"],
        log_path=log_path, env={**os.environ, **env}, ready=ready, ready_timeout=60, stop_leader_only=True,
    )


def worker_pids(master: int) -> set[int]:
    return {child.pid for child in psutil.Process(master).children()}
