"""What the connection figures cost and how far sampling can be trusted.

- collector_overhead: the collector's CPU (and its server backend's) at 10, 50
  and 100 samples a second, and the app's requests per second with the
  collector running divided by without it, alternating in one run.
- sampling_fidelity: spikes of connections shorter than the sample interval;
  the peak each sampling interval saw against the exact peak from the server's
  log, and against the truth the benchmark itself made.
"""

from __future__ import annotations

import os
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

from loadtests.sources.collector import CONNECTIONS_CSV, read_connections
from loadtests.sources.pool_stats import parse_metrics
from loadtests.run.processes import ManagedProcess, wait_until
from loadtests.run.embedded_server import ServerInfo, embedded_server, free_port
from loadtests.sources.server_log import counts_over_time, find_log, peak, read_records, rebuild_sessions
from loadtests.sources.csv_tail import has_data_row

_ROOT = Path(__file__).resolve().parent.parent
_SPIKE_APP = "bench-spike"
_OBSERVER_APP = "bench-observer"


def _collector(out: Path, dsn: str, interval: float) -> ManagedProcess:
    out.mkdir(parents=True, exist_ok=True)
    return ManagedProcess(
        f"collector every {interval:g} s",
        [sys.executable, "-m", "loadtests.sources.collector", "--out", str(out), "--interval", str(interval), "--max-seconds", "900"],
        log_path=out / "collector.log",
        env={**os.environ, "POOLCHECK_DSN": dsn},
        ready=lambda: has_data_row(out / CONNECTIONS_CSV),
        ready_timeout=20,
        stop_timeout=3,
    )


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def _backend_pid(dsn: str) -> int | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'poolcheck-collector'").fetchone()
    return row[0] if row else None


# -- overhead --------------------------------------------------------------------


def _served(url: str) -> int:
    """Requests every worker's pool has served so far (psycopg_pool's requests_num, summed)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        by_pid = parse_metrics(response.read().decode())
    return int(sum(stats.get("requests_num", 0) for stats in by_pid.values()))


def _workers_publish(url: str, workers: int):
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"{url}/metrics", timeout=2) as response:
                return len(parse_metrics(response.read().decode())) >= workers
        except OSError:
            return False

    return check


@contextmanager
def _app_under_load(server: ServerInfo, work: Path, *, workers: int, users: int) -> Iterator[str]:
    """The sample app (async pools) under constant Locust users; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": server.app_dsn, "POOL_MAX_SIZE": "4", "PROMETHEUS_MULTIPROC_DIR": str(work / "metrics")}
    (work / "metrics").mkdir()
    app = ManagedProcess(
        "app", [sys.executable, "-m", "gunicorn", "-c", str(_ROOT / "app" / "gunicorn.conf.py"), "--workers", str(workers),
                "--bind", f"127.0.0.1:{port}", "app.main:create_app()"],
        log_path=work / "gunicorn.log", env=env, ready=_workers_publish(url, workers), ready_timeout=60,
        stop_leader_only=True, stop_timeout=8,
    )
    load = ManagedProcess(
        "locust", [sys.executable, "-m", "locust", "-f", str(_ROOT / "loadtests" / "load" / "locustfile.py"), "--headless",
                   "--host", url, "--target-hosts", url, "--total-seconds", "900", "--baseline-users", str(users),
                   "--burst-users", str(users), "--quiet-seconds", "900", "--burst-seconds", "1", "--hold-ms", "20",
                   "--only-summary", "--logfile", str(work / "locust.log")],
        log_path=work / "locust.out", env=os.environ.copy(), stop_timeout=5,
    )
    with app, load:
        wait_until(lambda: _served(url) > 50, timeout=60, what="load on the app")
        yield url


def _segment(url: str, seconds: float) -> float:
    t0, n0 = time.monotonic(), _served(url)
    time.sleep(seconds)  # the measuring window itself
    return (_served(url) - n0) / (time.monotonic() - t0)


def _lines(path: Path) -> int:
    with open(path) as f:
        return sum(1 for _ in f)


@dataclass
class _Meter:
    """The collector's CPU, its server backend's CPU and the samples it wrote, over the sampling segments."""

    collector: int
    backend: int | None
    csv_path: Path
    totals: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0])  # cpu, backend cpu, samples, wall

    def reading(self) -> list[float]:
        backend = _cpu_s(self.backend) if self.backend else 0.0
        return [_cpu_s(self.collector), backend, float(_lines(self.csv_path)), time.monotonic()]

    def add_since(self, before: list[float]) -> None:
        self.totals = [t + now - then for t, now, then in zip(self.totals, self.reading(), before)]


def _order(pairs: int) -> list[str]:
    """off, on, on, off, off, on, ...: a shared machine's drift hits both states alike."""
    return [state for n in range(pairs) for state in (("off", "on") if n % 2 == 0 else ("on", "off"))]


def _alternate(url: str, server: ServerInfo, out: Path, *, interval: float, segment_s: float, pairs: int) -> dict[str, Any]:
    """Segments with the collector sampling and paused (SIGSTOP): pausing keeps its start-up out of the figures."""
    rps: dict[str, list[float]] = {"off": [], "on": []}
    csv_path = out / f"every-{interval:g}" / CONNECTIONS_CSV
    with _collector(csv_path.parent, server.superuser_dsn, interval) as collector:
        meter = _Meter(collector.pid, _backend_pid(server.superuser_dsn), csv_path)
        for state in _order(pairs):
            os.kill(collector.pid, signal.SIGCONT if state == "on" else signal.SIGSTOP)
            before = meter.reading()
            rps[state].append(_segment(url, segment_s))
            if state == "on":
                meter.add_since(before)
        os.kill(collector.pid, signal.SIGCONT)
    return _overhead(interval, rps, meter)


def _overhead(interval: float, rps: dict[str, list[float]], meter: _Meter) -> dict[str, Any]:
    cpu, backend_cpu, samples, wall = meter.totals
    ratio = statistics.mean(rps["on"]) / statistics.mean(rps["off"])
    return {
        "samples_per_s_asked": round(1 / interval),
        "samples_per_s_done": round(samples / wall, 1),
        "collector_cpu_share_of_one_core": round(cpu / wall, 4),
        "server_backend_cpu_share_of_one_core": round(backend_cpu / wall, 4),
        "rps_off": [round(r, 1) for r in rps["off"]],
        "rps_on": [round(r, 1) for r in rps["on"]],
        "rps_ratio_on_over_off": round(ratio, 4),
        "rps_spread_off_pct": round(100 * statistics.stdev(rps["off"]) / statistics.mean(rps["off"]), 1),
        "meets_0_97": ratio >= 0.97,
    }


def collector_overhead(results_dir: Path, *, intervals: tuple[float, ...] = (0.1, 0.02, 0.01), segment_s: float = 5.0,
                       pairs: int = 6, workers: int = 2, users: int = 32) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="poolcheck-bench-") as tmp, ExitStack() as stack:
        work = Path(tmp)
        server = stack.enter_context(embedded_server(run_dir=work, settings={"max_connections": 40}))
        url = stack.enter_context(_app_under_load(server, work, workers=workers, users=users))
        by_rate = [_alternate(url, server, work, interval=i, segment_s=segment_s, pairs=pairs) for i in intervals]
    return {"workers": workers, "users": users, "segment_s": segment_s, "pairs": pairs, "cpu_count": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2), "rates": by_rate}


# -- fidelity --------------------------------------------------------------------


def _wait_for(observer: psycopg.Connection, expected: int) -> None:
    query = f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{_SPIKE_APP}'"
    wait_until(lambda: observer.execute(query).fetchone()[0] == expected, timeout=10, what=f"{expected} spike sessions")


def _spikes(server: ServerInfo, *, spikes: int, base: int, size: int, hold_s: float, gap_s: float) -> list[tuple[float, float]]:
    """Hold `base` connections; `spikes` times open `size` more, hold them `hold_s`, close them. Returns the windows."""
    windows = []

    def connect() -> psycopg.Connection:
        return psycopg.connect(server.app_dsn, application_name=_SPIKE_APP, autocommit=True)

    with psycopg.connect(server.superuser_dsn, application_name=_OBSERVER_APP, autocommit=True) as observer:
        held = [connect() for _ in range(base)]
        for _ in range(spikes):
            opened_at = time.time()
            extra = [connect() for _ in range(size)]
            time.sleep(hold_s)  # the spike's length: the point of the benchmark
            for conn in extra:
                conn.close()
            _wait_for(observer, base)
            windows.append((opened_at, time.time()))
            time.sleep(gap_s)  # the quiet between spikes
        for conn in held:
            conn.close()
        _wait_for(observer, 0)
    return windows


def sampling_fidelity(results_dir: Path, *, intervals: tuple[float, ...] = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0),
                      spikes: int = 10, base: int = 2, size: int = 6, hold_s: float = 0.05, gap_s: float = 0.8) -> dict[str, Any]:
    """The same spikes once per interval, one collector at a time (collectors side by side starve each other of CPU)."""
    truth = base + size
    sampled = {}
    with tempfile.TemporaryDirectory(prefix="poolcheck-bench-") as tmp:
        work = Path(tmp)
        with embedded_server(run_dir=work, settings={"max_connections": 40}) as server:
            for interval in intervals:
                with _collector(work / f"every-{interval:g}", server.superuser_dsn, interval):
                    windows = _spikes(server, spikes=spikes, base=base, size=size, hold_s=hold_s, gap_s=gap_s)
                sampled[f"{interval:g}"] = _sampled(work / f"every-{interval:g}" / CONNECTIONS_CSV, base, truth, windows)
        sessions, _ = rebuild_sessions(read_records(find_log(work)))
        steps = counts_over_time(sessions, include=lambda s: s.application_name == _SPIKE_APP)
    exact_peak = peak(steps)[0]
    return {
        "truth_peak": truth,
        "exact_peak_from_log": exact_peak,
        "exact_equals_truth": exact_peak == truth,
        "spikes_at_truth_in_log": sum(1 for (_, a), (_, b) in zip(steps, steps[1:]) if a < truth <= b),
        "spikes": spikes * len(intervals),
        "spike_hold_s": hold_s,
        "by_interval_s": sampled,
    }


def _sampled(path: Path, base: int, truth: int, windows: list[tuple[float, float]]) -> dict[str, Any]:
    rows = read_connections(path)
    counts = [(_epoch(r["timestamp"]), sum(r["by_application"].get(_SPIKE_APP, {}).values())) for r in rows]
    # The highest count any sample saw during each spike (the base alone when no sample fell inside it).
    heights = [max((n for t, n in counts if start <= t <= end), default=base) for start, end in windows]
    sampled_peak = max((n for _, n in counts), default=0)
    return {
        "samples": len(rows),
        "sampled_peak": sampled_peak,
        "missed": truth - sampled_peak,
        "spikes_caught": sum(1 for h in heights if h == truth),
        "spikes": len(windows),
        "mean_spike_height_seen": round(statistics.mean(heights), 2) if heights else None,
    }


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()
