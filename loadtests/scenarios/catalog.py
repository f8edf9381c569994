"""Field failure scenarios as data: each known pool failure, its faulty settings, its fix, its detection rule
(the rules themselves: loadtests/scenarios/rules.py).

A scenario runs twice (loadtests/scenarios/runner.py): once with the faulty
pattern, once with the fix. Its rule is a pure function of a run's
summary.json that says whether the failure was seen and what was measured;
the harness detects the failure when the rule finds it in the faulty run and
not in the fixed one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from loadtests.budget import largest_max_size
from loadtests.config import RunConfig
from loadtests.scenarios.rules import (
    CHURN_FACTOR,
    LAG_LIMIT_MS,
    Finding,
    Summary,
    connection_closed_by_server,
    connection_lost_under_request,
    connections_churned,
    connections_kept_after_bursts,
    connections_outlive_workers,
    event_loop_blocked,
    orphaned_backends,
    overcommit_without_pooler,
    pool_stuck_in_another_loop,
    prepared_statement_lost,
    server_refused_connections,
    silent_drop_failures,
)

FAULTY, FIXED = "faulty", "fixed"
HALVES = (FAULTY, FIXED)

# Both halves of every scenario: two workers, small pools, about 10 s of load.
COMMON: dict[str, Any] = {"workers": 2, "max_size": 3, "min_size": 1, "sample_interval": 0.1, "cycles": 1}



@dataclass(frozen=True)
class Scenario:
    """One field failure: the settings of its faulty and fixed halves, what to expect, and its rule.

    Settings are RunConfig fields: COMMON, then `shared`, then the half's own.
    """

    name: str
    reproduces: str
    faulty_pattern: str
    fix: str
    expected_faulty: str
    expected_fixed: str
    rule: Callable[[Summary], Finding]
    faulty: Mapping[str, Any]
    fixed: Mapping[str, Any]
    shared: Mapping[str, Any] = field(default_factory=dict)
    # Settings of the fixed half computed from the faulty one (say the largest max_size that fits).
    fit_fixed: Callable[[RunConfig], dict[str, Any]] | None = None
    # Where the faulty pattern and its fix live ("app/antipatterns.py: _session_after_return").
    faulty_code: str = ""
    fixed_code: str = ""
    # The one change that fixes it, when a single change does.
    single_change: str = ""
    # Figures the fixed half shows by design, each with why: {words of the figure: why it is expected}.
    expected_in_fixed: Mapping[str, str] = field(default_factory=dict)

    def config(self, half: str, **harness: Any) -> RunConfig:
        """The RunConfig of one half; `harness` adds settings of the harness itself (results_dir...)."""
        if half not in HALVES:
            raise ValueError(f"half must be one of {', '.join(HALVES)}, got {half!r}")
        faulty = RunConfig(**{**COMMON, **self.shared, **self.faulty, **harness})
        if half == FAULTY:
            return faulty
        computed = self.fit_fixed(faulty) if self.fit_fixed else {}
        notes = {"expected_notes": dict(self.expected_in_fixed)}
        return RunConfig(**{**COMMON, **self.shared, **self.fixed, **computed, **notes, **harness})

    def detected(self, faulty: Finding, fixed: Finding) -> bool:
        return faulty.present is True and fixed.present is False


# -- the rules: pure functions of a summary.json ------------------------------


def _largest_fitting_size(faulty: RunConfig) -> dict[str, Any]:
    size = largest_max_size(faulty.budget, faulty.embedded_limits())
    if size < 1:
        raise ValueError(f"no max_size fits {faulty.max_connections} max_connections")
    return {"max_size": size, "min_size": min(faulty.min_size, size), "allow_overcommit": False}


# -- the scenarios ------------------------------------------------------------

SCENARIOS: tuple[Scenario, ...] = (
    *(Scenario(
        name=name,
        reproduces="requests that use a connection after giving it back fail once max_lifetime retires it"
        f" or another request holds it (a sync ConnectionPool in the field report; here {kind})",
        faulty_pattern="a dependency leaves `with pool.connection()` before the route runs, then sets"
        f" `conn.autocommit` per request (APP_PATTERN=autocommit-after-return); {kind} pool; no check;"
        " max_lifetime 3 s",
        fix="one change only: the dependency yields inside the block (APP_PATTERN=autocommit-per-request keeps"
        " the per-request autocommit); no check, same max_lifetime",
        expected_faulty="\"the connection is closed\" (db_connection_closed) and wrong-state db_error failures"
        " (\"can't change 'autocommit' now\", or \"Explicit commit() forbidden within a Transaction context\""
        " when the change lands inside another request's transaction)",
        expected_fixed="no such failure",
        rule=connection_lost_under_request,
        shared={"pool_kind": kind, "max_lifetime": 3.0, "duration": 10.0, "quiet_seconds": 1.0,
                "burst_seconds": 8.0, "burst_users": 12, "baseline_users": 4, "pool_check": False},
        faulty={"app_pattern": "autocommit-after-return"},
        fixed={"app_pattern": "autocommit-per-request"},
        faulty_code=f"app/antipatterns.py: _{kind}_autocommit_after_return",
        fixed_code=f"app/antipatterns.py: _{kind}_autocommit_per_request (app/deps.py: {kind}_session, with"
        " the settings in `configure`, is the app's own)",
        single_change=f"yield the session inside the `with pool.connection()` block ({kind}_session in app/deps.py):"
        " no request then uses a connection the pool has taken back",
        expected_in_fixed={"outlived max_lifetime": "psycopg retires a connection only when it comes back to the"
                           " pool, so one idle in the pool lives past max_lifetime; no request failed for it"},
    ) for name, kind in (("lifetime-expiry", "sync"), ("lifetime-expiry-async", "async"))),
    Scenario(
        name="idle-drain",
        reproduces="after a burst, a pool above min_size closes one unused connection per max_idle:"
        " with production's max_idle its connections stay for hours (under uvicorn --workers, as the field"
        " report's team ran it)",
        faulty_pattern="uvicorn --workers 2; min_size 0 (psycopg's default is 4), max_idle 600 s and max_lifetime 3600 s (psycopg's defaults)",
        fix="tuned for the burst pattern: max_idle 30 s in production (1 s here, so that the drain fits the run),"
        " max_lifetime 30 s: the burst's connections are back within the quiet phase",
        expected_faulty="the burst's connections still open at the end of the quiet phase",
        expected_fixed="drained to min_size within the quiet phase, about one connection per max_idle",
        rule=connections_kept_after_bursts,
        shared={"server": "uvicorn", "min_size": 0, "max_size": 4, "duration": 12.0, "quiet_seconds": 1.0, "burst_seconds": 3.0,
                "burst_users": 16, "baseline_users": 0},
        faulty={"max_idle": 600.0, "max_lifetime": 3600.0},
        fixed={"max_idle": 1.0, "max_lifetime": 30.0, "prod_max_idle": 30.0},
        faulty_code="app/db.py: _pool_arguments (POOL_MAX_IDLE 600 s, psycopg's default)",
        fixed_code="app/db.py: _pool_arguments (POOL_MAX_IDLE below the quiet phase)",
        single_change="max_idle short enough that (extra + 1) x max_idle fits the quiet phase",
        expected_in_fixed={"in production": "the prediction at the fixed max_idle: how long the drain takes"},
    ),
    Scenario(
        name="worker-churn",
        reproduces="connections left behind by pools that outlive their worker or were opened before the fork"
        " (under gunicorn only: uvicorn --workers, the field report's server, has no master that could"
        " preload the app, so this mechanism cannot happen there)",
        faulty_pattern="a pool opened when the app is created, with gunicorn --preload in the master, never"
        " closed; worker pools not closed at exit (APP_PATTERN=pool-before-fork); workers recycled by"
        " max_requests 150, one SIGTERMed and one SIGKILLed mid-burst",
        fix="the pool bound to the lifespan: opened and closed by each worker; same preload and churn",
        expected_faulty="more connections than workers x max_size, or dead workers' connections lingering",
        expected_fixed="no orphans, the total within workers x max_size",
        rule=connections_outlive_workers,
        shared={"preload": True, "max_requests": 150, "faults": ("worker-term@4", "worker-kill@7"),
                "duration": 11.0, "quiet_seconds": 1.0, "burst_seconds": 9.0, "burst_users": 10},
        faulty={"app_pattern": "pool-before-fork"},
        fixed={},
        faulty_code="app/antipatterns.py: _pool_before_fork",
        fixed_code="app/main.py: lifespan",
        single_change="open and close the pool in the lifespan (app/main.py: lifespan), never when the app is created",
        expected_in_fixed={"processes (workers": "recycled and replaced workers each open a pool of their own,"
                           " one after the other"},
    ),
    Scenario(
        name="loop-mismatch",
        reproduces="an AsyncConnectionPool opened in another event loop never grows in the worker's loop",
        faulty_pattern="the pool opened with asyncio.run when the app is created (APP_PATTERN=pool-in-other-loop)",
        fix="the pool opened in the lifespan, in the worker's own loop, with wait=True",
        expected_faulty="requests waiting while pool_size stays at min_size and pool_available at 0, the pool's"
        " connections idle on the server",
        expected_fixed="the pool grows and hands out its connections",
        rule=pool_stuck_in_another_loop,
        shared={"max_size": 8, "pool_timeout": 1.5, "hold_ms": 400, "duration": 10.0, "quiet_seconds": 1.0,
                "burst_seconds": 8.0, "burst_users": 16},
        faulty={"app_pattern": "pool-in-other-loop"},
        fixed={},
        faulty_code="app/antipatterns.py: _pool_in_other_loop",
        fixed_code="app/main.py: _open_async",
        single_change="open the pool in the lifespan, in the worker's own loop (`await pool.open(wait=True)`)",
    ),
    Scenario(
        name="server-idle-kill",
        reproduces="the server (or a cloud proxy) cuts idle sessions; the pool hands them out after a quiet phase",
        faulty_pattern="idle_session_timeout 2 s on the server, quiet phases of 3.5 s, no check, max_lifetime 3600 s",
        fix="check=AsyncConnectionPool.check_connection: a cut connection is replaced before a request gets it",
        expected_faulty="db_connection_closed failures after each quiet phase",
        expected_fixed="no failure",
        rule=connection_closed_by_server,
        shared={"server_settings": {"idle_session_timeout": "2s"}, "baseline_users": 0, "quiet_seconds": 3.5,
                "burst_seconds": 2.0, "cycles": 2, "duration": 12.0, "burst_users": 10, "max_lifetime": 3600.0},
        faulty={"pool_check": False},
        fixed={"pool_check": True},
        faulty_code="app/db.py: make_async_pool (check=None: POOL_CHECK off)",
        fixed_code="app/db.py: make_async_pool (check=AsyncConnectionPool.check_connection)",
        single_change="check=AsyncConnectionPool.check_connection",
    ),
    Scenario(
        name="proxy-silent-drop",
        reproduces="a cloud proxy drops idle connections silently; max_lifetime below its cut does not help, since"
        " psycopg retires a connection only when it is returned or checked, never while it sits idle in the pool",
        faulty_pattern="the field report's fix: max_lifetime 1.5 s below the proxy's 2 s silent idle cut"
        " (6 h and 1 h there); no check; quiet phases of 3 s; the client's tcp_user_timeout 1 s"
        " (--proxy-client-timeout)",
        fix="check=ConnectionPool.check_connection, with the same tcp_user_timeout: a dead connection is found"
        " and replaced before a request gets it (max_idle below the cut fixes it too); same max_lifetime",
        expected_faulty="requests that hang into a cut connection for the tcp_user_timeout, then db_connection_closed",
        expected_fixed="no failed request: the checks hang instead, measured as hung time (the verdict still"
        " counts the cut connections' backends the server keeps: host-vanishes)",
        rule=silent_drop_failures,
        shared={"proxy_idle_cut": 2.0, "proxy_mode": "silent", "proxy_client_timeout": 1.0, "max_lifetime": 1.5,
                "baseline_users": 0, "quiet_seconds": 3.0, "burst_seconds": 2.0, "cycles": 2, "duration": 12.0,
                "burst_users": 8, "pool_timeout": 8.0},
        faulty={"pool_check": False},
        fixed={"pool_check": True},
        faulty_code="app/db.py: make_async_pool (check=None: POOL_CHECK off)",
        fixed_code="app/db.py: make_async_pool (check=AsyncConnectionPool.check_connection)",
        single_change="check=AsyncConnectionPool.check_connection (max_lifetime below the cut does not help)",
    ),
    Scenario(
        name="host-vanishes",
        reproduces="a worker's host (or the network to it) disappears without closing its sockets: the server"
        " never learns and keeps its connections as orphans, counted against max_connections",
        faulty_pattern="the relay stops forwarding the app's idle connections without a FIN or RST (a silent"
        " cut after 2 s idle), as a vanished host or a partition would; the server's defaults (keepalive after"
        " 2 h, no idle_session_timeout)",
        fix="the server ends what it cannot reach: idle_session_timeout 3 s here (tcp_keepalives_idle,"
        " _interval and _count on a real network; on loopback the relay's kernel answers the probes)",
        expected_faulty="backends of cut connections still on the server at the end of the run",
        expected_fixed="each such backend gone a second after its client",
        rule=orphaned_backends,
        # The client's timeout ends the app's side of a cut (the pool's check then replaces the connection).
        shared={"proxy_idle_cut": 2.0, "proxy_mode": "silent", "proxy_client_timeout": 1.0, "baseline_users": 0, "cycles": 1,
                "burst_seconds": 3.0, "quiet_seconds": 5.0, "duration": 8.0, "burst_users": 8},
        faulty={},
        fixed={"server_settings": {"idle_session_timeout": "3s"}},
        faulty_code="the server's settings: keepalive after 2 h, no idle_session_timeout",
        fixed_code="the server's settings: idle_session_timeout (tcp_keepalives_* on a real network)",
        single_change="idle_session_timeout on the server, below the idle time of a pool's connections",
    ),
    Scenario(
        name="blocking-loop",
        reproduces="a handler that blocks the event loop stalls every request of its worker and the pool's timers",
        faulty_pattern="/items/hold runs its query, then calls time.sleep(3) (APP_PATTERN=blocking-sleep);"
        " an asyncpg pool, whose max_inactive_connection_lifetime (max_idle 1 s) timer runs in the loop",
        fix="the wait is awaited (the app's own /items/hold; asyncio.sleep or run_in_executor for other work)",
        expected_faulty=f"event-loop lag of {LAG_LIMIT_MS / 1000:g} s or more, idle connections closed late",
        expected_fixed="lag of milliseconds, idle connections closed on time",
        rule=event_loop_blocked,
        shared={"pool_kind": "asyncpg", "min_size": 0, "max_idle": 1.0, "hold_ms": 3000, "duration": 11.0,
                "quiet_seconds": 1.0, "burst_seconds": 4.0, "burst_users": 6, "baseline_users": 0},
        faulty={"app_pattern": "blocking-sleep"},
        fixed={},
        faulty_code="app/antipatterns.py: _blocking_hold",
        fixed_code="app/routes/items.py: hold",
        single_change="await the wait (asyncio.sleep, or run_in_executor for blocking work) instead of time.sleep",
    ),
    Scenario(
        name="overcommit",
        reproduces="hosts x workers x max_size above the server's usable connections",
        faulty_pattern="2 workers x max_size 8 against max_connections 13 (10 usable), --allow-overcommit --spread-users",
        fix="the largest max_size that fits, computed by the harness (loadtests/budget.py)",
        expected_faulty="the peak at the server's limit; connections refused by the server when both workers"
        " want more (db_too_many_connections once requests wait past pool_timeout)",
        expected_fixed="the run passes within the budget",
        rule=server_refused_connections,
        # Both halves in the worst case: a new connection per request gives every worker its requests.
        shared={"max_connections": 13, "pool_timeout": 5.0, "hold_ms": 400, "duration": 10.0,
                "quiet_seconds": 1.0, "burst_seconds": 8.0, "burst_users": 16, "spread_users": True},
        faulty={"max_size": 8, "allow_overcommit": True},
        fixed={},
        faulty_code="the settings: 2 workers x max_size 8 against 10 usable connections",
        fixed_code="loadtests/budget.py: largest_max_size",
        single_change="max_size at most (usable - other clients) // (hosts x workers): `poolcheck budget` prints it",
        fit_fixed=_largest_fitting_size,
    ),
    Scenario(
        name="sqlalchemy-overflow-churn",
        reproduces="a SQLAlchemy engine whose pool_size is far below the burst opens its overflow on every"
        " burst and closes each overflow connection as it is returned: connects all the time",
        faulty_pattern="--pool-kind sqlalchemy, pool_size 1 and max_overflow 10 per worker, 8 requests in flight"
        " per worker in a burst",
        fix="pool_size sized for the burst (8) with a small max_overflow (2): the engine keeps its connections",
        expected_faulty=f"more than {CHURN_FACTOR} x what the engines hold opened (the server's log): connects per second",
        expected_fixed="about as many connections opened as the engines hold",
        rule=connections_churned,
        shared={"pool_kind": "sqlalchemy", "max_size": None, "hold_ms": 100, "duration": 10.0, "quiet_seconds": 1.0,
                "burst_seconds": 8.0, "burst_users": 16, "baseline_users": 2},
        faulty={"pool_size": 1, "max_overflow": 10},
        fixed={"pool_size": 8, "max_overflow": 2},
    ),
    Scenario(
        name="pgbouncer-fixes-overcommit",
        reproduces="pools whose budget exceeds the server's usable connections, directly and through PgBouncer",
        faulty_pattern="2 workers x max_size 8 against max_connections 13 (10 usable), straight to the server"
        " (--allow-overcommit)",
        fix="the same pools through PgBouncer in transaction mode: default_pool_size 4 + reserve_pool_size 1"
        " server connections (--pgbouncer transaction --no-prepared-statements)",
        expected_faulty="the peak at the server's limit, connections refused",
        expected_fixed="the run passes: 16 client connections to PgBouncer, at most 5 of PgBouncer's to the server",
        rule=overcommit_without_pooler,
        shared={"max_connections": 13, "max_size": 8, "pool_timeout": 5.0, "hold_ms": 400, "duration": 10.0,
                "quiet_seconds": 1.0, "burst_seconds": 8.0, "burst_users": 16, "prepared_statements": False},
        faulty={"allow_overcommit": True},
        fixed={"pgbouncer": "transaction", "pgbouncer_pool_size": 4, "pgbouncer_reserve_pool_size": 1},
    ),
    Scenario(
        name="prepared-statements-behind-pgbouncer",
        reproduces="under PgBouncer's transaction pooling a named prepared statement lives on one server"
        " connection; the next transaction may get another: \"prepared statement ... does not exist\"",
        faulty_pattern="asyncpg's statement cache (statement_cache_size 100, its default) through PgBouncer 1.18"
        " in transaction mode (psycopg's prepare_threshold 5 fails the same way)",
        fix="statement_cache_size=0 (asyncpg), prepare_threshold=None (psycopg): --no-prepared-statements;"
        " or PgBouncer 1.21 or newer with max_prepared_statements > 0, which tracks them itself",
        expected_faulty="db_prepared_statement_lost failures",
        expected_fixed="no failure",
        rule=prepared_statement_lost,
        shared={"pool_kind": "asyncpg", "pgbouncer": "transaction", "pgbouncer_pool_size": 3, "duration": 8.0,
                "quiet_seconds": 1.0, "burst_seconds": 6.0, "burst_users": 12, "hold_ms": 50},
        faulty={"prepared_statements": True},
        fixed={"prepared_statements": False},
    ),
)

NAMES = tuple(s.name for s in SCENARIOS)


def find(name: str) -> Scenario:
    """The scenario called `name`; ValueError lists the known ones."""
    for scenario in SCENARIOS:
        if scenario.name == name:
            return scenario
    raise ValueError(f"unknown scenario {name!r}; known: {', '.join(NAMES)}")
