"""The load: Locust users against the sample app, driven by a burst shape.

Failures are named by the app's error class (`{"error": CLASS}`), so Locust's
failure table says which limit was hit. Shape and target come from the
harness as custom Locust options.
"""

from __future__ import annotations

import itertools
import random

import locust.stats
from locust import LoadTestShape, between, events, task
from locust.contrib.fasthttp import FastHttpUser

from loadtests.failure_classes import failure_name
from loadtests.live import web_ui as live_ui
from loadtests.load import records as load_record
from loadtests.shapes import DEFAULT_LOAD, Stage, burst_stages, stage_at

_host_cycle: itertools.cycle | None = None

# Locust flushes its CSV files every 5 s; a killed run should lose at most one second.
locust.stats.CSV_STATS_FLUSH_INTERVAL_SEC = 1


@events.init_command_line_parser.add_listener
def _options(parser) -> None:
    group = parser.add_argument_group("poolcheck")
    group.add_argument("--target-hosts", default="", help="comma-separated base URLs of app instances")
    group.add_argument("--hold-ms", type=int, default=DEFAULT_LOAD.hold_ms, help="ms each /items/hold request holds its connection")
    group.add_argument("--total-seconds", type=float, default=DEFAULT_LOAD.total_seconds)
    group.add_argument("--baseline-users", type=int, default=DEFAULT_LOAD.baseline_users)
    group.add_argument("--burst-users", type=int, default=DEFAULT_LOAD.burst_users)
    group.add_argument("--burst-seconds", type=float, default=DEFAULT_LOAD.burst_seconds)
    group.add_argument("--quiet-seconds", type=float, default=DEFAULT_LOAD.quiet_seconds)
    group.add_argument("--cycles", type=int, default=DEFAULT_LOAD.cycles)
    group.add_argument("--spread-users", action="store_true",
                       help="a new connection per request: gunicorn spreads the requests over every worker")


@events.init.add_listener
def _records_and_database_view(environment, **kwargs) -> None:
    # Beside Locust's CSV files: the load's start and failures by class per second;
    # in its web UI (when it runs one): the database connections.
    load_record.install(environment)
    live_ui.install(environment)


class AppUser(FastHttpUser):
    """A client of the sample app: mostly reads, some held connections, a few writes."""

    wait_time = between(0.02, 0.1)
    host = "http://127.0.0.1:8000"

    def on_start(self) -> None:
        global _host_cycle
        targets = [h for h in self.environment.parsed_options.target_hosts.split(",") if h]
        if targets:
            if _host_cycle is None:
                _host_cycle = itertools.cycle(targets)
            # Spread users over the app instances the way a load balancer would.
            self.client.base_url = next(_host_cycle)
        self.hold_ms = self.environment.parsed_options.hold_ms
        # Without keep-alive each request is a new connection, which gunicorn gives to whichever
        # worker accepts first: no user sticks to one worker, so every pool gets its share.
        self.headers = {"Connection": "close"} if self.environment.parsed_options.spread_users else None

    def _call(self, method: str, path: str, name: str) -> None:
        with self.client.request(method, path, name=name, headers=self.headers, catch_response=True) as response:
            if 200 <= response.status_code < 300:
                response.success()
                return
            try:
                body = response.json()
            except Exception:  # a non-JSON error page is still a failure
                body = None
            response.failure(failure_name(response.status_code, body))

    @task(5)
    def read(self) -> None:
        self._call("GET", f"/items/read?item_id={random.randint(1, 100)}", "/items/read")

    @task(4)
    def hold(self) -> None:
        self._call("GET", f"/items/hold?ms={self.hold_ms}", "/items/hold")

    @task(1)
    def write(self) -> None:
        self._call("POST", "/items/write", "/items/write")


class BurstShape(LoadTestShape):
    """Quiet and burst phases from loadtests.shapes; the harness passes the numbers."""

    _stages: list[Stage] | None = None

    def _build(self) -> list[Stage]:
        o = self.runner.environment.parsed_options
        return burst_stages(
            total_seconds=o.total_seconds,
            baseline_users=o.baseline_users,
            burst_users=o.burst_users,
            burst_seconds=o.burst_seconds,
            quiet_seconds=o.quiet_seconds,
            cycles=o.cycles,
        )

    def tick(self):
        if self._stages is None:
            self._stages = self._build()
        stage = stage_at(self._stages, self.get_run_time())
        return None if stage is None else (stage.users, stage.spawn_rate)
