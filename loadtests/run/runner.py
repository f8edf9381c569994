"""One run: server, collector, app instances and Locust, stacked so teardown runs in reverse.

    preflight (budget, inputs)  ->  run folder + manifest
    -> embedded server | --dsn  ->  collector  ->  gunicorn x hosts  ->  Locust
    <- everything stopped, summary.json written from the folder alone
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from app.metrics import MULTIPROC_ENV

from loadtests import budget as budget_math
from loadtests.budget import ServerLimits
from loadtests.sources.collector import CONNECTIONS_CSV, read_server_settings
from loadtests.analysis.advice import advice_lines
from loadtests.analysis.sections import accounting_lines
from loadtests.config import RunConfig
from loadtests.run.locust_options import LOOPBACK, MasterBind, locustfile_argument, master_options, worker_argv
from loadtests.analysis.exact_counts import record_exact
from loadtests.faults import DB_RESTART, DB_TERMINATE_IDLE, WORKER_KILL, WORKER_TERM, Fault
from loadtests.faults import event as fault_event
from loadtests.faults import kill_one_worker, record, terminate_idle
from loadtests.run.leftovers import clean_leftovers
from loadtests.sources.pool_stats import POOL_STATS_CSV
from loadtests.run.processes import Interrupted, ManagedProcess, start_time, wait_until
from loadtests.live.terminal import Progress
from loadtests.redact import Redactor
from loadtests.present.report import write_report
from loadtests.run_folder import (
    LOCUST_PREFIX,
    MANIFEST,
    SUMMARY,
    host_info,
    new_run_dir,
    now_iso,
    point_latest,
    versions,
    write_json,
)
from loadtests.run.embedded_server import ServerInfo, embedded_server, free_port
from loadtests.shapes import phases
from loadtests.sources.csv_tail import has_data_row
from loadtests.analysis.summary import INTERRUPTED, PASS, app_prefix, summarize
from loadtests.run.own_app import answers_http, url_password

logger = logging.getLogger("poolcheck.runner")

APP_NAME = "poolcheck-app"
EXIT_PASS, EXIT_FAIL, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130
WEB_UI_LINGER_S = 30  # the web UI stays up this long after the shape ends, then the run finishes
_APP_DIR = Path(__file__).resolve().parents[2] / "app"


class Refused(Exception):
    """The run must not start: bad input or a budget that does not fit."""


@dataclass
class _Stop:
    """Set by signal handlers, read by the main loop: handlers do nothing else."""

    requests: int = 0

    def __call__(self) -> bool:
        return self.requests > 0

    def forced(self) -> bool:
        return self.requests > 1


@dataclass
class _Targets:
    server_dsn: str
    app_dsn: str
    app_urls: list[str] = field(default_factory=list)


def read_limits(dsn: str) -> tuple[ServerLimits, dict[str, str]]:
    """Connection limits of an existing server: read-only, one short connection."""
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            settings = read_server_settings(conn)
    except psycopg.Error as exc:
        raise Refused(f"--dsn: cannot connect: {Redactor()(str(exc).strip().splitlines()[0])}") from None
    limits = ServerLimits(
        max_connections=int(settings["max_connections"]),
        superuser_reserved_connections=int(settings.get("superuser_reserved_connections", 0)),
        reserved_connections=int(settings.get("reserved_connections", 0)),
    )
    return limits, settings


def preflight(config: RunConfig) -> ServerLimits:
    """Everything that can refuse a run, checked before anything starts."""
    if config.dsn is not None:
        try:
            psycopg.conninfo.conninfo_to_dict(config.dsn)
        except psycopg.ProgrammingError:
            raise Refused("--dsn: not a valid connection string or URL") from None
        limits, _ = read_limits(config.dsn)
    else:
        limits = config.embedded_limits()
    _check_writable(config.results_dir)
    _check_ports_free(config)
    _check_web_port(config)
    if not budget_math.fits(config.budget, limits) and not config.allow_overcommit:
        raise Refused(
            f"refused: {budget_math.explain(config.budget, limits)}; "
            "lower --max-size or --workers, or pass --allow-overcommit to see the failure"
        )
    return limits


def _check_ports_free(config: RunConfig) -> None:
    if not config.app_port:
        return
    for port in range(config.app_port, config.app_port + config.hosts):
        if _port_taken(port):
            raise Refused(f"--app-port: port {port} on 127.0.0.1 is in use")


def _check_web_port(config: RunConfig) -> None:
    if config.web_ui and _port_taken(config.web_port):
        raise Refused(f"--web-port: port {config.web_port} on 127.0.0.1 is in use")


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise Refused(f"--results-dir {results_dir}: not writable ({exc.strerror})") from None


def _health_pids(url: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return int(json.load(response)["pid"]) if response.status == 200 else None
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def _every_worker_healthy(url: str, workers: int) -> Callable[[], bool]:
    """A readiness check: true once `workers` distinct pids have answered /health.

    Each request is a new connection, which the kernel hands to whichever
    worker accepts first; a few rounds reach them all.
    """
    seen: set[int] = set()

    def check() -> bool:
        for _ in range(4 * workers):
            pid = _health_pids(url)
            if pid is not None:
                seen.add(pid)
            if len(seen) >= workers:
                return True
        return False

    return check


class Runner:
    """Runs one load test from a validated config; `run()` returns the exit code."""

    def __init__(
        self, config: RunConfig, *, limits: ServerLimits, echo: Callable[[str], None] = print, label: str = ""
    ) -> None:
        self.config = config
        self.label = label  # prefixes the run folder's name, e.g. "faulty"
        self.limits = limits
        self.echo = echo
        self.stop = _Stop()
        self.redact = Redactor()
        self.run_dir: Path | None = None
        self.manifest: dict[str, Any] = {}
        self.pids: dict[str, list[int]] = {}
        self.apps: list[ManagedProcess] = []
        self.server: ServerInfo | None = None
        self.master_bind = _master_bind(config)
        self.redact.add(url_password(config.target_url or "") or "")

    # -- signals ---------------------------------------------------------------

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only a flag: the main loop and every wait read it. A second signal
        # makes teardown kill at once instead of waiting for graceful stops.
        self.stop.requests += 1

    @contextmanager
    def _signals(self) -> Iterator[None]:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- the run ---------------------------------------------------------------

    def run(self) -> int:
        config = self.config
        with self._signals():
            for line in clean_leftovers(config.results_dir):
                self.echo(f"cleaned up after a killed run: {line}")
            label = "-".join(filter(None, (self.label, f"w{config.workers}-m{config.max_size}-{config.pool_kind}")))
            self.run_dir = new_run_dir(config.results_dir, label=label)
            self._start_manifest()
            self.echo(budget_math.explain(config.budget, self.limits))
            return self._finish(self._run_guarded())

    def _run_guarded(self) -> str:
        """Run the stack; whatever happens, it has been torn down on return."""
        assert self.run_dir is not None
        try:
            self._run_stack()
        except Interrupted:
            return INTERRUPTED
        except Exception as exc:  # keep the data and say what broke, in one line
            self.manifest["error"] = self.redact(f"{type(exc).__name__}: {exc}")
            (self.run_dir / "runner-error.log").write_text(self.redact(traceback.format_exc()))
            self.echo(f"poolcheck: {self.manifest['error']} (logs in {self.run_dir})")
            return INTERRUPTED if self.stop() else "error"
        return INTERRUPTED if self.stop() else "finished"

    def _track(self, role: str, process: ManagedProcess) -> None:
        """Record a child's pid and start time at once: a killed runner's successor needs them."""
        self.pids.setdefault(role, []).append(process.pid)
        self.manifest["process_starts"][str(process.pid)] = process.started_at
        self._write_manifest()

    def _run_stack(self) -> None:
        with ExitStack() as stack:
            targets = self._database(stack)
            self._start_collector(stack, targets)
            self._start_apps(stack, targets)
            self._start_scraper(stack, targets)
            self._write_manifest()
            self._run_locust(stack, targets)

    def _database(self, stack: ExitStack) -> _Targets:
        config = self.config
        if config.dsn is not None:
            self.redact.add(*_passwords(config.dsn))
            return _Targets(server_dsn=config.dsn, app_dsn=config.dsn)
        assert self.run_dir is not None
        server = stack.enter_context(
            embedded_server(
                run_dir=self.run_dir,
                settings=config.embedded_server_settings(),
                ready_timeout=config.ready_timeout,
                cancelled=self.stop,
                forced=self.stop.forced,
            )
        )
        self.server = server
        self.redact.add(*server.passwords)
        self.manifest["postgres"] = {"port": server.port, "pid": server.pid, "ready_seconds": server.ready_seconds}
        assert server.process is not None
        self._track("postgres", server.process)
        return _Targets(server_dsn=server.superuser_dsn, app_dsn=server.app_dsn)

    def _start_sampler(
        self, stack: ExitStack, name: str, *, interval: float, args: list[str], ready: Callable[[], bool], **env: str
    ) -> None:
        """The collector or the scraper: `python -m loadtests.sources.<name>` writing into the run folder."""
        assert self.run_dir is not None
        sampler = ManagedProcess(
            name,
            [
                sys.executable, "-m", f"loadtests.sources.{name}",
                "--out", str(self.run_dir),
                "--interval", str(interval),
                # A sampler stops by itself after this, whatever happens to the runner.
                "--max-seconds", str(self.config.duration + self.config.ready_timeout + 120),
                *args,
            ],
            log_path=self.run_dir / f"{name}.log",
            env=_child_env(**env),
            ready=ready,
            ready_timeout=15,
            stop_timeout=3,
            cancelled=self.stop,
            forced=self.stop.forced,
        )
        stack.enter_context(sampler)
        self._track(name, sampler)

    def _start_collector(self, stack: ExitStack, targets: _Targets) -> None:
        assert self.run_dir is not None
        csv_path = self.run_dir / CONNECTIONS_CSV
        self._start_sampler(
            stack,
            "collector",
            interval=self.config.sample_interval,
            args=[arg for spec in self.config.watch.as_specs() for arg in ("--watch", spec)],
            ready=lambda: has_data_row(csv_path),
            POOLCHECK_DSN=targets.server_dsn,
        )

    def _start_apps(self, stack: ExitStack, targets: _Targets) -> None:
        assert self.run_dir is not None
        if self.config.target_url is not None:
            return self._use_target(targets, self.config.target_url)
        env = _child_env(**self.config.app_environment(targets.app_dsn), APP_NAME=APP_NAME)
        for host in range(1, self.config.hosts + 1):
            port = self.config.app_port + host - 1 if self.config.app_port else free_port()
            url = f"http://127.0.0.1:{port}"
            app = ManagedProcess(
                f"app host {host}",
                [
                    sys.executable, "-m", "gunicorn",
                    "-c", str(_APP_DIR / "gunicorn.conf.py"),
                    "--workers", str(self.config.workers),
                    "--bind", f"127.0.0.1:{port}",
                    "app.main:create_app()",
                ],
                log_path=self.run_dir / f"gunicorn-h{host}.log",
                env={**env, MULTIPROC_ENV: self._metrics_dir(stack)},
                ready=_every_worker_healthy(url, self.config.workers),
                ready_timeout=self.config.ready_timeout,
                stop_leader_only=True,
                stop_timeout=8,
                cancelled=self.stop,
                forced=self.stop.forced,
            )
            stack.enter_context(app)
            self.apps.append(app)
            self._track("gunicorn", app)
            targets.app_urls.append(url)
            self.echo(f"app host {host}: {self.config.workers} workers ready at {url} ({app.ready_seconds:.1f} s)")
        self.manifest["app_urls"] = targets.app_urls

    def _metrics_dir(self, stack: ExitStack) -> str:
        """A fresh PROMETHEUS_MULTIPROC_DIR per app instance: stale files would show workers of another run."""
        path = tempfile.mkdtemp(prefix="poolcheck-metrics-")
        stack.callback(shutil.rmtree, path, ignore_errors=True)
        return path

    def _start_scraper(self, stack: ExitStack, targets: _Targets) -> None:
        """Every worker's pool stats from /metrics into pool_stats.csv, and worker liveness into workers.csv."""
        assert self.run_dir is not None
        self._start_sampler(
            stack,
            "scraper",
            interval=self.config.scrape_interval,
            args=["--app-prefix", app_prefix(self.manifest), *(arg for url in targets.app_urls for arg in ("--url", url))],
            ready=(self.run_dir / POOL_STATS_CSV).exists,
        )

    def _use_target(self, targets: _Targets, url: str) -> None:
        """An app the harness did not start: wait until it answers HTTP, never touch it otherwise."""
        c = self.config
        seconds = wait_until(lambda: answers_http(url), timeout=c.ready_timeout, what=url, cancelled=self.stop)
        targets.app_urls.append(url)
        self.manifest["app_urls"] = targets.app_urls
        self.echo(f"target {url} answers ({seconds:.1f} s); budgeted as {c.hosts} hosts x {c.workers} workers")

    def _start_locust_workers(self, stack: ExitStack) -> None:
        """Local Locust workers; they retry until the master, started next, is up."""
        assert self.run_dir is not None and self.master_bind is not None
        for n in range(1, self.config.locust_workers + 1):
            worker = ManagedProcess(
                f"locust worker {n}",
                worker_argv(
                    self.master_bind,
                    locustfile=locustfile_argument(self.config.locustfile),
                    logfile=self.run_dir / f"locust-worker-{n}.log",
                ),
                log_path=self.run_dir / f"locust-worker-{n}.out",
                env=_child_env(),
                stop_timeout=5,
                forced=self.stop.forced,
            )
            stack.enter_context(worker)
            self._track("locust-worker", worker)

    def _master_options(self) -> list[str]:
        if self.master_bind is None:
            return []
        workers = self.config.locust_workers + self.config.locust_remote_workers
        return master_options(self.master_bind, expect_workers=workers, max_wait_s=self.config.ready_timeout)

    def _locust_argv(self, targets: _Targets) -> list[str]:
        assert self.run_dir is not None
        c = self.config
        return [
            sys.executable, "-m", "locust",
            "-f", locustfile_argument(c.locustfile),
            *self._ui_options(),
            "--host", targets.app_urls[0],
            "--target-hosts", ",".join(targets.app_urls),
            "--csv", str(self.run_dir / LOCUST_PREFIX),
            "--csv-full-history",  # its Aggregated rows then hold recent percentiles, not cumulative ones
            "--logfile", str(self.run_dir / "locust.log"),
            "--total-seconds", str(c.duration),
            "--baseline-users", str(c.baseline_users),
            "--burst-users", str(c.burst_users),
            "--burst-seconds", str(c.burst_seconds),
            "--quiet-seconds", str(c.quiet_seconds),
            "--cycles", str(c.cycles),
            "--hold-ms", str(c.hold_ms),
            "--stop-timeout", "2",
            *self._master_options(),
        ]

    def _ui_options(self) -> list[str]:
        """Headless, or Locust's web UI starting the shape at once and closing a while after it."""
        if not self.config.web_ui:
            return ["--headless", "--only-summary"]
        return ["--autostart", "--autoquit", str(WEB_UI_LINGER_S),
                "--web-host", "127.0.0.1", "--web-port", str(self.config.web_port)]

    def _run_locust(self, stack: ExitStack, targets: _Targets) -> None:
        assert self.run_dir is not None
        history = self.run_dir / f"{LOCUST_PREFIX}_stats_history.csv"
        if self.master_bind is not None:
            self._start_locust_workers(stack)
        locust = ManagedProcess(
            "locust",
            self._locust_argv(targets),
            log_path=self.run_dir / "locust.out",
            env=_child_env(),
            stop_signal=signal.SIGTERM,
            stop_timeout=5,
            # Locust writes its first history row when the shape starts: the load's time zero.
            ready=lambda: has_data_row(history),
            # A master starts the shape once its workers have joined (within --ready-timeout).
            ready_timeout=30 + (self.config.ready_timeout if self.master_bind else 0),
            cancelled=self.stop,
            forced=self.stop.forced,
        )
        stack.enter_context(locust)
        self._track("locust", locust)
        if self.config.web_ui:
            self.echo(f"Locust web UI: http://127.0.0.1:{self.config.web_port} (Database tab; live chart at /poolcheck)")
        self.manifest["load_started_at"] = now_iso()
        self._write_manifest()
        self._watch_load(locust, targets)
        self.manifest["load_ended_at"] = now_iso()

    def _watch_load(self, locust: ManagedProcess, targets: _Targets) -> None:
        """The main loop: progress, faults due, and the stop flag, about twice a second."""
        assert self.run_dir is not None
        progress = Progress(self.run_dir, config=self.config, limits=self.limits, echo=self.echo)
        load_start, load_start_epoch = time.monotonic(), time.time()
        pending = self.config.fault_plan()
        deadline = load_start + self.config.duration + 60 + (WEB_UI_LINGER_S if self.config.web_ui else 0)
        try:
            while locust.wait(0.5) is None:
                if self.stop():
                    raise Interrupted("interrupted during the load")
                if time.monotonic() > deadline:
                    raise RuntimeError("locust did not finish within its duration + 60 s")
                while pending and time.monotonic() - load_start >= pending[0].at_s:
                    self._inject(pending.pop(0), targets, load_start_epoch)
                progress.tick()
        finally:
            progress.close()

    def _inject(self, fault: Fault, targets: _Targets, load_start_epoch: float) -> None:
        assert self.run_dir is not None
        detail = self._fault_action(fault, targets)
        elapsed = time.time() - self._collector_epoch()
        record(self.run_dir, fault_event(fault, elapsed_s=elapsed, load_start_epoch=load_start_epoch, detail=detail))
        self.echo(f"fault {fault}: {detail}")

    def _fault_action(self, fault: Fault, targets: _Targets) -> str:
        if fault.kind == WORKER_KILL:
            return f"SIGKILL worker {kill_one_worker(self.apps[0].pid)}"
        if fault.kind == WORKER_TERM:
            return f"SIGTERM worker {kill_one_worker(self.apps[0].pid, signum=signal.SIGTERM)}"
        if fault.kind == DB_RESTART:
            assert self.server is not None
            return f"server restarted in {self.server.restart():.2f} s"
        if fault.kind == DB_TERMINATE_IDLE:
            return f"terminated {terminate_idle(targets.server_dsn, app_prefix=APP_NAME + ':')} idle backends"
        raise ValueError(f"unknown fault {fault}")

    def _collector_epoch(self) -> float:
        """When the collector started: its `elapsed_s` is the run's common time axis."""
        assert self.run_dir is not None
        first = _first_sample_time(self.run_dir / CONNECTIONS_CSV)
        return first if first is not None else time.time()

    # -- manifest and summary --------------------------------------------------

    def _start_manifest(self) -> None:
        assert self.run_dir is not None
        config = self.config
        self.manifest = {
            "run_id": self.run_dir.name,
            "status": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "argv": [self.redact(a) for a in sys.argv],
            # No prefix for an app of your own: every watched connection is the app's.
            "app_name": "" if config.target_url else APP_NAME,
            "config": config.public(),
            # Settings given on the command line or in --config; the rest are defaults nobody declared.
            "declared": sorted(config.model_fields_set),
            "budget": config.budget.as_dict(),
            "server": {**self.limits.as_dict(), "embedded": config.embedded},
            "shape": phases(config.stages()),
            "versions": versions(),
            "host": host_info(),
            "pids": self.pids,
            "process_starts": {},
            "runner": {"pid": os.getpid(), "started": start_time(os.getpid())},
        }
        self._write_manifest()

    def _write_manifest(self) -> None:
        assert self.run_dir is not None
        write_json(self.run_dir / MANIFEST, json.loads(self.redact(json.dumps(self.manifest))))

    def _finish(self, status: str) -> int:
        assert self.run_dir is not None
        self._record_exact()
        summary = self._write_results(status)
        if self.stop() and status != INTERRUPTED:
            # Interrupted while the results were written: write them again, saying so.
            status = INTERRUPTED
            summary = self._write_results(status)
        point_latest(self.config.results_dir, self.run_dir)
        self._print_summary(summary)
        self.echo(str(self.run_dir))
        if status == INTERRUPTED:
            return EXIT_INTERRUPTED
        if status == "error":
            return EXIT_FAIL
        return EXIT_PASS if summary["verdict"] == PASS else EXIT_FAIL

    def _write_results(self, status: str) -> dict[str, Any]:
        """manifest.json, summary.json and report.html for `status`, secrets scrubbed."""
        assert self.run_dir is not None
        self.manifest["status"] = status
        self.manifest["ended_at"] = now_iso()
        self.manifest["versions"]["postgresql"] = _server_version(self.run_dir)
        self._write_manifest()
        summary = summarize(self.run_dir)
        write_json(self.run_dir / SUMMARY, summary)
        self.redact.scrub_folder(self.run_dir)
        self._write_report()
        return summary

    def _record_exact(self) -> None:
        """connections_exact.csv from the server's log; the figures are a bonus, never the run's end."""
        assert self.run_dir is not None
        try:
            warning = record_exact(
                self.run_dir,
                server_log=self.config.server_log,
                run_start=datetime.fromisoformat(self.manifest["started_at"]).timestamp(),
                embedded=self.config.embedded,
                app_prefix=app_prefix(self.manifest),
            )
        except (OSError, ValueError) as exc:
            warning = f"exact connection timeline not written: {exc}"
        if warning:
            self.echo(warning)

    def _write_report(self) -> None:
        """report.html from the finished folder; a report that fails must not cost the run."""
        assert self.run_dir is not None
        try:
            self.echo(f"report: {write_report(self.run_dir)}")
        except Exception:
            logger.exception("report.html could not be written; the run's data and verdict stand")

    def _print_summary(self, summary: dict[str, Any]) -> None:
        r = summary["requests"]
        self.echo(
            f"peak {summary['peak_connections']} connections (budget {summary['budget']['total']},"
            f" usable {summary['server']['usable']}, max_connections {summary['server']['max_connections']});"
            f" {r['total']} requests, {r['failures']} failed, {r['rps']} req/s,"
            f" p50 {r['p50_ms']:g} ms, p95 {r['p95_ms']:g} ms, p99 {r['p99_ms']:g} ms"
        )
        if summary["errors_by_class"]:
            self.echo("failures by class: " + ", ".join(f"{k} {v}" for k, v in summary["errors_by_class"].items()))
        self.echo(f"verdict: {summary['verdict'].upper()}")
        for reason in summary["reasons"]:
            self.echo(f"  - {reason}")
        for warning in summary.get("warnings", []):
            self.echo(f"  warning: {warning}")
        for line in accounting_lines(summary):
            self.echo(line)
        self.echo("advice:")
        for line in advice_lines(summary.get("advice", [])):
            self.echo(f"  - {line}")


def _master_bind(config: RunConfig) -> MasterBind | None:
    """Where the Locust master listens: as given, else a free loopback port; None without workers."""
    if not config.distributed:
        return None
    return config.master_bind() or MasterBind(LOOPBACK, free_port())


def _passwords(dsn: str) -> list[str]:
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return []
    return [str(password)] if password else []


def _child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POOL_", "DATABASE_URL"))}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _first_sample_time(path: Path) -> float | None:
    """The collector's start (epoch seconds), from its first sample: timestamp - elapsed_s."""
    try:
        with open(path) as f:
            f.readline()
            timestamp, elapsed = f.readline().split(",")[:2]
        return datetime.fromisoformat(timestamp).timestamp() - float(elapsed)
    except (OSError, ValueError):
        return None


def _server_version(run_dir: Path) -> str | None:
    path = run_dir / "server.json"
    if path.exists():
        return json.loads(path.read_text()).get("server_version")
    return None
