"""`poolcheck budget --pgbouncer`: PgBouncer's settings from the options, both levels and the answer printed."""

from __future__ import annotations

import sys

import rich_click as click

from loadtests.budget import Budget, PoolerSettings, ServerLimits
from loadtests.errors import EXIT_FAIL, EXIT_PASS, BadInput
from loadtests.options.json_output import budget_document, emit, human_lines_to_stderr
from loadtests.redact import redact_dsn

POOLER_OPTIONS = (
    click.option("--pgbouncer", type=click.Choice(["transaction", "session"]),
                 help="the app's pools reach the server through PgBouncer in this pool mode: check both levels"),
    click.option("--pgbouncer-pool-size", type=click.IntRange(1, 10_000),
                 help="PgBouncer's default_pool_size  [default: 20, PgBouncer's]"),
    click.option("--pgbouncer-reserve-pool-size", type=click.IntRange(0, 10_000),
                 help="PgBouncer's reserve_pool_size  [default: 0, PgBouncer's]"),
    click.option("--pgbouncer-max-client-conn", type=click.IntRange(1, 100_000),
                 help="PgBouncer's max_client_conn  [default: 100, PgBouncer's]"),
)


def budget_pooler(mode: str | None, **sizes: int | None) -> PoolerSettings | None:
    """PgBouncer's settings for `poolcheck budget`, its own defaults where none is given; None without --pgbouncer."""
    from loadtests.config import PGBOUNCER_DEFAULTS

    if mode is None:
        given = [name for name, value in sizes.items() if value is not None]
        if given:
            raise BadInput(f"--pgbouncer-{'pool-size' if given[0] == 'default_pool_size' else given[0].replace('_', '-')}:"
                           " sizes PgBouncer's pools; needs --pgbouncer transaction|session")
        return None
    defaults = {name.removeprefix("pgbouncer_"): value for name, value in PGBOUNCER_DEFAULTS.items()}
    defaults["default_pool_size"] = defaults.pop("pool_size")
    return PoolerSettings(pool_mode=mode, **{name: defaults[name] if value is None else value for name, value in sizes.items()})


def print_pooler_budget(plan: Budget, pooler: PoolerSettings, server: ServerLimits, *, headroom: float,
                        surge_hosts: int, json: bool, dsn: str | None, fail_on_headroom: bool) -> None:
    """The direct arithmetic, both levels behind PgBouncer, one answer line; exits with the verdict."""
    from loadtests.budget import describe, explain_pooler
    from loadtests.options.json_output import pooler_document
    from loadtests.pooler_answer import pooler_answer, pooler_answer_lines, pooler_budget

    levels = pooler_budget(plan, pooler)
    with human_lines_to_stderr(json) as stdout:
        if dsn is not None:
            click.echo(f"limits read from {redact_dsn(dsn)}")
        click.echo("directly: " + describe(plan, server)[0])
        for line in explain_pooler(levels, server):
            click.echo(line)
        for line in pooler_answer_lines(plan, pooler, server, headroom_ratio=headroom, surge_hosts=surge_hosts):
            click.echo(line)
    found = pooler_answer(plan, pooler, server, headroom_ratio=headroom, surge_hosts=surge_hosts)
    if json:
        emit(pooler_document(budget_document(plan, server, limits_from="dsn" if dsn is not None else "options"),
                             levels, pooler, found, server), stdout)
    sys.exit(EXIT_PASS if found.fits_now and (found.keeps_headroom or not fail_on_headroom) else EXIT_FAIL)
