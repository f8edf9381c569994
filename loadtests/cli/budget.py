"""`poolcheck budget`: the arithmetic against a server's limits, instant, with one answer line."""

from __future__ import annotations

import sys

import rich_click as click

from loadtests.budget import Budget, ServerLimits
from loadtests.cli.budget_pooler import POOLER_OPTIONS, budget_pooler, print_pooler_budget
from loadtests.cli.group import cli
from loadtests.cli.shared import common, default_of, from_run_config, pool_sizes_option, with_default
from loadtests.config import SQLALCHEMY_DEFAULTS
from loadtests.errors import EXIT_FAIL, EXIT_PASS, BadInput, Refused
from loadtests.options.aliases import AliasedOption
from loadtests.options.json_output import budget_document, emit, human_lines_to_stderr
from loadtests.redact import redact_dsn


def _given_or_default(value: int | None, name: str) -> int:
    return default_of(name) if value is None else value


def _budget_limits(dsn: str | None, **given: int | None) -> ServerLimits:
    """The server's limits: read from `dsn` (read-only), else the options, with PostgreSQL's defaults."""
    from loadtests.run.preflight import read_server_limits

    if dsn is not None:
        if any(value is not None for value in given.values()):
            raise BadInput("--dsn reads max_connections and the reserved settings from the server; give one or the other")
        try:
            return read_server_limits(dsn)[0]
        except Refused as exc:
            raise BadInput(str(exc)) from None
    if given["max_connections"] is None:
        raise BadInput("--max-connections: required (or --dsn to read it from a running server)")
    limits = ServerLimits(
        max_connections=given["max_connections"],
        superuser_reserved_connections=_given_or_default(given["superuser_reserved_connections"], "superuser_reserved_connections"),
        reserved_connections=_given_or_default(given["reserved_connections"], "reserved_connections"),
    )
    if limits.usable <= 0:
        raise BadInput(f"--max-connections ({limits.max_connections}) must exceed the reserved slots")
    return limits


def _budget_plan(*, max_size: int | None, pool_size: int | None, max_overflow: int | None, **counts: int) -> Budget:
    """A psycopg or asyncpg pool's max_size, or a SQLAlchemy engine's pool_size + max_overflow, never both."""
    from loadtests.config import MAX_POOL

    if pool_size is None and max_overflow is None:
        if max_size is None:
            raise BadInput("--max-size (psycopg, asyncpg) or --pool-size (SQLAlchemy): one is required")
        return Budget(max_size=max_size, **counts)
    if max_size is not None:
        raise BadInput("--max-size: a SQLAlchemy engine holds --pool-size + --max-overflow; give those, not --max-size")
    pool_size = SQLALCHEMY_DEFAULTS["pool_size"] if pool_size is None else pool_size
    max_overflow = SQLALCHEMY_DEFAULTS["max_overflow"] if max_overflow is None else max_overflow
    if pool_size + max_overflow > MAX_POOL:
        raise BadInput(f"--pool-size + --max-overflow: at most {MAX_POOL} connections per engine, got {pool_size + max_overflow}")
    return Budget.for_engines(pool_size=pool_size, max_overflow=max_overflow, **counts)


@cli.command("budget")
@from_run_config("--hosts", type=click.IntRange(min=1), help="app instances")
@click.option("--workers", type=click.IntRange(min=1), required=True, help="workers per host, each with its own pools")
@click.option("--max-size", type=click.IntRange(min=1), help="max_size of each psycopg or asyncpg pool")
@click.option("--pool-size", type=click.IntRange(min=1), help="pool_size of each SQLAlchemy engine, instead of --max-size")
@click.option("--max-overflow", type=click.IntRange(min=0),
              help=f"max_overflow of each SQLAlchemy engine: connections beyond --pool-size  [default: {SQLALCHEMY_DEFAULTS['max_overflow']}, SQLAlchemy's]")
@from_run_config("--pools-per-worker", type=click.IntRange(min=1), help="pools in each worker")
@from_run_config("--other-clients", type=click.IntRange(min=0),
                  help="connections other clients hold (cron jobs, admin sessions, migrations)")
@click.option("--max-connections", type=click.IntRange(min=1), help="the server's max_connections")
@click.option("--superuser-reserved-connections", cls=AliasedOption, old_names=("--superuser-reserved",),
              type=click.IntRange(min=0),
              help=with_default("the server's superuser_reserved_connections", "superuser_reserved_connections"))
@click.option("--reserved-connections", cls=AliasedOption, old_names=("--reserved",), type=click.IntRange(min=0),
              help=with_default("the server's reserved_connections", "reserved_connections"))
@click.option("--dsn", envvar="POOLCHECK_DSN", show_envvar=True,
              help="read max_connections and the reserved settings from this server (read-only)")
@click.option("--pool-sizes", callback=pool_sizes_option, metavar="N,N,...",
              help="max_size of each pool in a worker, when they differ, e.g. 4,4,10 (instead of --max-size)")
@click.option("--headroom", type=click.FloatRange(0, 100, max_open=True), default=20.0, show_default=True,
              help="percent of the usable connections to keep free; the answer line keeps it")
@click.option("--surge-hosts", type=click.IntRange(min=0), default=0, show_default=True,
              help="hosts added during a rolling deploy, each with full pools, before the old ones stop")
@click.option("--fail-on-headroom", is_flag=True, help="exit 1 when the headroom is not kept, not only when it does not fit")
@POOLER_OPTIONS[0]
@POOLER_OPTIONS[1]
@POOLER_OPTIONS[2]
@POOLER_OPTIONS[3]
@common(config=True, json="print the budget, the limits and the fit as JSON on stdout (loadtests/options/schemas/budget.schema.json)")
def budget_command(
    hosts: int, workers: int, max_size: int | None, pool_size: int | None, max_overflow: int | None,
    pools_per_worker: int, other_clients: int, dsn: str | None, pool_sizes: tuple[int, ...] | None,
    headroom: float, surge_hosts: int, fail_on_headroom: bool, json: bool, pgbouncer: str | None,
    pgbouncer_pool_size: int | None, pgbouncer_reserve_pool_size: int | None, pgbouncer_max_client_conn: int | None,
    **limits: int | None
) -> None:
    """Check hosts x workers x pools x max_size (or pool_size + max_overflow) against max_connections: instant, no load.

    Ends with one answer line: the largest pool size that keeps --headroom with --surge-hosts more hosts.
    Exit codes: 0 fits (during the deploy too), 1 does not fit, 2 bad input.
    """
    from loadtests.budget import describe
    from loadtests.budget_answer import answer, answer_lines, pool_sizes_plan

    if pool_sizes is not None:
        try:
            plan = pool_sizes_plan(pool_sizes, hosts=hosts, workers=workers, extra_clients=other_clients,
                                   max_size=max_size, pool_size=pool_size, max_overflow=max_overflow,
                                   pools_per_worker=pools_per_worker)
        except ValueError as exc:
            raise BadInput(str(exc)) from None
    else:
        plan = _budget_plan(hosts=hosts, workers=workers, max_size=max_size, pool_size=pool_size, max_overflow=max_overflow,
                            pools_per_worker=pools_per_worker, extra_clients=other_clients)
    pooler = budget_pooler(pgbouncer, default_pool_size=pgbouncer_pool_size, reserve_pool_size=pgbouncer_reserve_pool_size,
                           max_client_conn=pgbouncer_max_client_conn)
    server = _budget_limits(dsn, **limits)
    if pooler is not None:
        print_pooler_budget(plan, pooler, server, headroom=headroom / 100, surge_hosts=surge_hosts, json=json, dsn=dsn,
                            fail_on_headroom=fail_on_headroom)
    with human_lines_to_stderr(json) as stdout:
        if dsn is not None:
            click.echo(f"limits read from {redact_dsn(dsn)}")
        # With pools of several sizes, "largest max_size per pool" would not say which pool: the answer line does.
        for line in describe(plan, server)[: 2 if plan.pool_sizes else None]:
            click.echo(line)
        for line in answer_lines(plan, server, headroom_ratio=headroom / 100, surge_hosts=surge_hosts):
            click.echo(line)
    if json:
        emit(budget_document(plan, server, limits_from="dsn" if dsn is not None else "options"), stdout)
    found = answer(plan, server, headroom_ratio=headroom / 100, surge_hosts=surge_hosts)
    sys.exit(EXIT_PASS if found.fits_now and (found.keeps_headroom or not fail_on_headroom) else EXIT_FAIL)
