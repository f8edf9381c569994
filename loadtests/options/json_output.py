"""`--json`: a command's result as one JSON document on stdout, every line meant for people on stderr.

A pipeline can then keep stdout as a file (`poolcheck run --json > summary.json`) and still
show the progress in its log. The documents' schemas are in loadtests/options/schemas/.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import IO, Any

from loadtests import budget as budget_math
from loadtests.budget import Budget, PoolerBudget, PoolerSettings, ServerLimits
from loadtests.run_folder import SCHEMA_VERSION


@contextlib.contextmanager
def human_lines_to_stderr(enabled: bool) -> Iterator[IO[str]]:
    """With `enabled`, whatever the command prints (click.echo, print, rich) goes to stderr; yields the real stdout."""
    stdout = sys.stdout
    if not enabled:
        yield stdout
        return
    with contextlib.redirect_stdout(sys.stderr):
        yield stdout


def emit(document: Any, stream: IO[str]) -> None:
    stream.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    stream.flush()


def budget_document(plan: Budget, limits: ServerLimits, *, limits_from: str) -> dict[str, Any]:
    """What `poolcheck budget --json` prints: the same figures as its lines."""
    return {
        "schema_version": SCHEMA_VERSION,
        "fits": budget_math.fits(plan, limits),
        "explanation": budget_math.explain(plan, limits),
        "budget": plan.as_dict(),
        "server": {**limits.as_dict(), "from": limits_from},
        "headroom": budget_math.headroom(plan, limits),
        "largest": {
            "max_size": budget_math.largest_max_size(plan, limits),
            "workers": budget_math.largest_workers(plan, limits),
            "hosts": budget_math.largest_hosts(plan, limits),
        },
    }


def pooler_document(direct: dict[str, Any], levels: PoolerBudget, settings: PoolerSettings, found: Any,
                    limits: ServerLimits) -> dict[str, Any]:
    """`poolcheck budget --pgbouncer --json`: the direct figures, and both levels behind PgBouncer with the answer.

    `fits` is then the verdict behind PgBouncer (both levels at the deploy's peak); `direct_fits` the direct one.
    """
    return {
        **direct,
        "fits": found.fits_now,
        "direct_fits": direct["fits"],
        "pgbouncer": {
            "pool_mode": settings.pool_mode,
            **levels.as_dict(limits),
            "answer": {
                "peak_hosts": found.peak_hosts,
                "keep": found.keep,
                "default_pool_size_at_most": found.default_pool_size,
                "max_client_conn_at_least": found.max_client_conn,
                "keeps_headroom": found.keeps_headroom,
            },
        },
    }
