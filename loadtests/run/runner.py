"""One run: a supervisor over parts that each do one job, stacked so that teardown runs in reverse.

    preflight (budget, inputs)     run/preflight.py     refused: nothing started
    -> run folder + manifest       run/manifest.py      pids on record as each child starts
    -> embedded server | --dsn     run/embedded_server.py
    -> PgBouncer (--pgbouncer)     run/pgbouncer.py     + its SHOW POOLS sampler
    -> collector                   run/samplers.py
    -> cloud-proxy emulator        run/proxy_process.py  (--proxy-idle-cut: the app's DSN goes through it)
    -> gunicorn x hosts | target   run/app_hosts.py
    -> scraper                     run/samplers.py
    -> Locust (+ workers)          run/locust_stack.py
    -> the load, watched           run/load_watch.py    progress, faults, the stop flag
    <- everything stopped; summary.json and report.html from the folder alone   run/finish.py
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import psycopg

from loadtests import budget as budget_math
from loadtests.analysis.summary import INTERRUPTED
from loadtests.budget import ServerLimits
from loadtests.config import RunConfig
from loadtests.errors import Interrupted, ProcessError
from loadtests.redact import Redactor
from loadtests.run import locust_stack, samplers
from loadtests.run.app_hosts import AppHost, app_hosts, wait_for_target
from loadtests.run.embedded_server import ServerInfo, embedded_server
from loadtests.run.finish import ERROR, FINISHED, finish
from loadtests.run.leftovers import clean_leftovers
from loadtests.run.load_watch import FaultTargets, watch_load
from loadtests.run.manifest import Manifest
from loadtests.run.own_app import url_password
from loadtests.run.pgbouncer import pgbouncer
from loadtests.run.processes import ManagedProcess
from loadtests.run.proxy_process import app_dsn_through, proxy_process, relay_port, upstream_of
from loadtests.run.signals import Stop, counting_signals
from loadtests.run_folder import RUNNER_ERROR_LOG, app_prefix, new_run_dir, now_iso


@dataclass(frozen=True)
class _Database:
    """The server the run watches, and the DSN the app gets."""

    server_dsn: str
    app_dsn: str
    embedded: ServerInfo | None = None


class Runner:
    """Runs one load test from a validated config; `run()` returns the exit code."""

    def __init__(
        self, config: RunConfig, *, limits: ServerLimits, echo: Callable[[str], None] = print, label: str = ""
    ) -> None:
        self.config = config
        self.limits = limits
        self.echo = echo
        self.label = label  # prefixes the run folder's name, e.g. "faulty"
        self.stop = Stop()
        self.redact = Redactor()
        self.redact.add(url_password(config.target_url or "") or "")
        self.run_dir: Path | None = None
        self.manifest: Manifest | None = None

    def run(self) -> int:
        config = self.config
        with counting_signals(self.stop):
            for line in clean_leftovers(config.results_dir):
                self.echo(f"cleaned up after a killed run: {line}")
            label = "-".join(filter(None, (self.label, config.run_label())))
            self.run_dir = run_dir = new_run_dir(config.results_dir, label=label)
            self.manifest = manifest = Manifest(run_dir, config=config, limits=self.limits, redact=self.redact)
            if config.pooler_budget is not None:
                for line in budget_math.explain_pooler(config.pooler_budget, self.limits):
                    self.echo(line)
            else:
                self.echo(budget_math.explain(config.budget, self.limits))  # the summary's budget_sentence, the same words
            status = self._run_guarded(run_dir, manifest)
            return finish(
                status, config=config, run_dir=run_dir, manifest=manifest, redact=self.redact, stop=self.stop,
                echo=self.echo,
            )

    def _run_guarded(self, run_dir: Path, manifest: Manifest) -> str:
        """Run the stack; whatever happens, it has been torn down on return."""
        try:
            self._run_stack(run_dir, manifest)
        except Interrupted:
            return INTERRUPTED
        except Exception as exc:  # keep the data and say what broke, in one line
            manifest.update(error=self.redact(f"{type(exc).__name__}: {exc}"))
            (run_dir / RUNNER_ERROR_LOG).write_text(self.redact(traceback.format_exc()))
            where = "" if isinstance(exc, ProcessError) and exc.log_path else f" (logs in {run_dir})"
            self.echo(f"poolcheck: {manifest.data['error']}{where}")
            return INTERRUPTED if self.stop() else ERROR
        return INTERRUPTED if self.stop() else FINISHED

    def _run_stack(self, run_dir: Path, manifest: Manifest) -> None:
        config, stop = self.config, self.stop

        def start(role: str, process: ManagedProcess) -> ManagedProcess:
            """Start a child into the stack and put its pid on record before the next one starts."""
            stack.enter_context(process)
            manifest.track(role, process)
            return process

        with ExitStack() as stack:
            database = self._database(stack, run_dir, manifest)
            start("collector", samplers.collector(config, server_dsn=database.server_dsn, run_dir=run_dir, stop=stop))
            database = self._pooler(stack, database, start, run_dir, manifest)
            if config.proxy_idle_cut is not None:
                database = self._through_proxy(start, database, run_dir)
            hosts = self._apps(stack, database, run_dir, manifest)
            app_urls = [host.url for host in hosts] or [str(config.target_url)]
            manifest.data["app_urls"] = app_urls
            prefix = app_prefix(manifest.data["app_name"])
            # Pool telemetry only where it exists: the sample app's /metrics, or the --metrics-url given.
            metrics_urls = [host.url for host in hosts] or ([config.metrics_url] if config.metrics_url else [])
            if metrics_urls:
                start("scraper", samplers.scraper(config, app_urls=metrics_urls, app_prefix=prefix, run_dir=run_dir,
                                                  stop=stop))
            locust = self._start_locust(start, app_urls=app_urls, run_dir=run_dir)
            manifest.update(load_started_at=now_iso())
            targets = FaultTargets(
                server_dsn=database.server_dsn,
                server=database.embedded,
                app_server_pid=hosts[0].process.pid if hosts else None,
                manifest=manifest,
            )
            try:
                watch_load(
                    locust, config=config, limits=self.limits, run_dir=run_dir, stop=stop, echo=self.echo,
                    targets=targets,
                )
            finally:
                # Interrupted too: the drain is measured up to here, never into the teardown.
                manifest.update(load_ended_at=now_iso())

    def _start_locust(
        self, start: Callable[[str, ManagedProcess], ManagedProcess], *, app_urls: list[str], run_dir: Path
    ) -> ManagedProcess:
        """Local Locust workers first (they wait for their master), then the Locust that drives the shape."""
        config, stop = self.config, self.stop
        bind = locust_stack.master_bind(config)
        if bind is not None:
            for worker in locust_stack.local_workers(config, bind=bind, run_dir=run_dir, stop=stop):
                start("locust-worker", worker)
        master = locust_stack.locust_master(config, bind=bind, app_urls=app_urls, run_dir=run_dir, stop=stop)
        locust = start("locust", master)
        if config.web_ui:
            self.echo(f"Locust web UI: http://127.0.0.1:{config.web_port} (Database tab; live chart at /poolcheck)")
        return locust

    def _database(self, stack: ExitStack, run_dir: Path, manifest: Manifest) -> _Database:
        """The --dsn server, only read; else a fresh embedded server, stopped last."""
        config = self.config
        if config.dsn is not None:
            self.redact.add(*_passwords(config.dsn))
            return _Database(server_dsn=config.dsn, app_dsn=config.dsn)
        server = stack.enter_context(
            embedded_server(
                run_dir=run_dir,
                settings=config.embedded_server_settings(),
                ready_timeout=config.ready_timeout,
                cancelled=self.stop,
                forced=self.stop.forced,
            )
        )
        self.redact.add(*server.passwords)
        manifest.data["postgres"] = {"port": server.port, "pid": server.pid, "ready_seconds": server.ready_seconds}
        assert server.process is not None
        manifest.track("postgres", server.process)
        return _Database(server_dsn=server.superuser_dsn, app_dsn=server.app_dsn, embedded=server)

    def _pooler(
        self, stack: ExitStack, database: _Database, start: Callable[[str, ManagedProcess], ManagedProcess],
        run_dir: Path, manifest: Manifest,
    ) -> _Database:
        """With --pgbouncer: PgBouncer in front of the server, and its sampler; the app then gets PgBouncer's DSN."""
        pooler, budget = self.config.pooler(), self.config.pooler_budget
        if pooler is None or budget is None:
            return database
        assert database.embedded is not None
        app = psycopg.conninfo.conninfo_to_dict(database.app_dsn)
        bouncer = stack.enter_context(
            pgbouncer(
                pooler, run_dir=run_dir, server_port=database.embedded.port, database=str(app["dbname"]),
                app_user=str(app["user"]), app_password=str(app["password"]),
                ready_timeout=self.config.ready_timeout, cancelled=self.stop, forced=self.stop.forced,
            )
        )
        self.redact.add(*bouncer.passwords)
        assert bouncer.process is not None
        manifest.track("pgbouncer", bouncer.process)
        manifest.update(pgbouncer={
            "version": bouncer.version, "port": bouncer.port, "pool_mode": pooler.pool_mode,
            "ready_seconds": bouncer.ready_seconds, "budget": budget.as_dict(self.limits),
            **pooler.server_timers(),
        })
        self.echo(f"PgBouncer {bouncer.version} ({pooler.pool_mode} pooling) ready on 127.0.0.1:{bouncer.port}")
        start("pgbouncer_pools", samplers.pgbouncer_pools(self.config, admin_dsn=bouncer.admin_dsn, run_dir=run_dir, stop=self.stop))
        return _Database(server_dsn=database.server_dsn, app_dsn=bouncer.app_dsn, embedded=database.embedded)

    def _through_proxy(
        self, start: Callable[[str, ManagedProcess], ManagedProcess], database: _Database, run_dir: Path
    ) -> _Database:
        """The relay, started before the apps so that it stops after them; only the app's DSN goes through it.

        The collector and the faults keep the direct DSN: they watch the server, not what the proxy lets through.
        """
        config = self.config
        assert config.proxy_idle_cut is not None
        start("proxy", proxy_process(
            run_dir=run_dir, upstream=upstream_of(database.app_dsn), idle_cut=config.proxy_idle_cut,
            mode=config.proxy_mode, client_timeout=config.proxy_client_timeout, listen_port=config.proxy_listen_port,
            # Outlives any run that goes to plan; stops by itself should the runner be killed.
            max_seconds=config.duration + 2 * config.ready_timeout + 120, stop=self.stop,
        ))
        port = relay_port(run_dir)
        self.echo(f"cloud-proxy emulator on 127.0.0.1:{port}: {config.proxy_mode} cut after {config.proxy_idle_cut:g} s idle")
        if config.target_url is not None:
            host, server_port = upstream_of(database.app_dsn)
            self.echo(f"your app's DSN must connect to 127.0.0.1:{port} (not {host}:{server_port}) for its connections"
                      " to go through it; its pools reconnect there if it started first")
        return _Database(server_dsn=database.server_dsn, app_dsn=app_dsn_through(database.app_dsn, port),
                         embedded=database.embedded)

    def _apps(self, stack: ExitStack, database: _Database, run_dir: Path, manifest: Manifest) -> list[AppHost]:
        """The sample app's hosts, ready; none for a --target-url app, once it answers."""
        config = self.config
        if config.target_url is not None:
            seconds = wait_for_target(config.target_url, config=config, stop=self.stop)
            self.echo(
                f"target {config.target_url} answers ({seconds:.1f} s);"
                f" budgeted as {config.hosts} hosts x {config.workers} workers"
            )
            return []

        def on_start(host: AppHost) -> None:
            manifest.track(config.server, host.process)
            self.echo(
                f"app host {host.number}: {config.workers} workers ready at {host.url}"
                f" ({host.process.ready_seconds:.1f} s)"
            )

        return stack.enter_context(
            app_hosts(config, app_dsn=database.app_dsn, run_dir=run_dir, stop=self.stop, on_start=on_start)
        )


def _passwords(dsn: str) -> list[str]:
    try:
        password = psycopg.conninfo.conninfo_to_dict(dsn).get("password")
    except psycopg.ProgrammingError:
        return []
    return [str(password)] if password else []
