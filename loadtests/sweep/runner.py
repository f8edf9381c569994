"""A pool-size sweep: one full real run per cell of pool kind x workers x max_size, each with a fresh server.

    plan (validate every cell, refuse those over budget)  ->  results/sweep-<id>/sweep.json
    -> run the cells, repeats interleaved                 ->  one run folder per run
    <- sweep_summary.json, sweep.csv, sweep.html          (pure functions of the folder)
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from loadtests import budget as budget_math
from loadtests.budget import ServerLimits
from loadtests.config import SQLALCHEMY, RunConfig, describe_error
from loadtests.errors import EXIT_FAIL, EXIT_INTERRUPTED, EXIT_PASS, Refused
from loadtests.redact import Redactor
from loadtests.run.preflight import preflight
from loadtests.run.runner import Runner
from loadtests.run_folder import host_info, now_iso, unique_dir, utc_stamp, versions, write_json
from loadtests.shapes import full_bursts
from loadtests.sweep.page import SWEEP_HTML, write_sweep_page
from loadtests.sweep.recommend import Criteria, cell_name
from loadtests.sweep.search import search
from loadtests.sweep.table import (
    SWEEP_CSV,
    SWEEP_JSON,
    SWEEP_SUMMARY,
    cell_figures,
    cell_key,
    summarize_sweep,
    table_text,
    write_csv,
)

logger = logging.getLogger("poolcheck.sweep")

FINISHED, INTERRUPTED = "finished", "interrupted"


def parse_list(text: str, *, option: str, convert: Callable[[str], Any] = int) -> list[Any]:
    """`1,2,4` as a sorted list without repeats; a bad value is one line naming the option."""
    values = []
    for part in text.split(","):
        part = part.strip()
        try:
            if not part:
                raise ValueError
            values.append(convert(part))
        except ValueError:
            raise Refused(f"{option}: {part!r} in {text!r} is not valid; give values like 1,2,4") from None
    return sorted(set(values))


@dataclass(frozen=True)
class Cell:
    """One point of the sweep and the run settings that measure it."""

    config: RunConfig
    refused: str | None = None

    @property
    def key(self) -> str:
        return cell_key(pool_kind=self.config.pool_kind, workers=self.config.workers, max_size=self.config.max_size,
                        pgbouncer_pool_size=self.config.pgbouncer_pool_size)

    def record(self) -> dict[str, Any]:
        config = self.config
        pooler = config.pooler_budget
        return {
            "key": self.key,
            "pool_kind": config.pool_kind,
            "workers": config.workers,
            "max_size": config.max_size,
            "hosts": config.hosts,
            "budget": config.budget.as_dict(),
            "fits": _fits(config),
            # Behind PgBouncer only its server pools reach the server: the level the cell is checked on.
            **({"pgbouncer_pool_size": pooler.default_pool_size,
                "pgbouncer": pooler.as_dict(config.embedded_limits())} if pooler is not None else {}),
            "refused": self.refused,
            "runs": [],
        }


def _fits(config: RunConfig) -> bool:
    """Directly: the pools against the usable connections; behind PgBouncer: both of its levels."""
    limits = config.embedded_limits()
    pooler = config.pooler_budget
    if pooler is not None:
        return pooler.clients_fit() and pooler.server_fits(limits)
    return budget_math.fits(config.budget, limits)


def _over_budget(config: RunConfig) -> str:
    limits = config.embedded_limits()
    pooler = config.pooler_budget
    if pooler is None:
        return f"over budget: {budget_math.explain(config.budget, limits)}"
    clients, server = budget_math.explain_pooler(pooler, limits)
    return f"over budget: {server}" if not pooler.server_fits(limits) else f"over budget: {clients}"


def _cell(base: RunConfig, *, pool_kind: str, workers: int, max_size: int, pgbouncer_pool_size: int | None = None) -> Cell:
    try:
        # A SQLAlchemy cell's max_size is its engine's pool_size, without overflow.
        sizes = {"max_size": None, "pool_size": max_size, "max_overflow": 0} if pool_kind == SQLALCHEMY else {"max_size": max_size}
        pooler = {} if pgbouncer_pool_size is None else {"pgbouncer_pool_size": pgbouncer_pool_size}
        config = RunConfig(**{**base.model_dump(), "pool_kind": pool_kind, "workers": workers, **sizes, **pooler})
    except ValidationError as exc:
        raise Refused(describe_error(exc)) from None
    if _fits(config) or config.allow_overcommit:
        return Cell(config)
    return Cell(config, refused=_over_budget(config))


def plan_cells(
    base: RunConfig, *, pool_kinds: list[str], workers: list[int], max_sizes: list[int],
    pgbouncer_pool_sizes: list[int | None] | None = None,
) -> list[Cell]:
    """Every cell, validated before anything starts; cells over budget are marked refused.

    `pgbouncer_pool_sizes`: PgBouncer's default_pool_size per cell (with --pgbouncer); None keeps the base's.
    """
    if base.dsn is not None:
        raise Refused("--dsn: a sweep needs a fresh embedded server per cell")
    if not full_bursts(base.stages(), burst_seconds=base.burst_seconds):
        raise Refused(
            f"--duration {base.duration:g}: a cell must hold a full burst (--quiet-seconds {base.quiet_seconds:g}"
            f" + --burst-seconds {base.burst_seconds:g}), or its ranking measures a cut burst"
        )
    return [
        _cell(base, pool_kind=kind, workers=w, max_size=m, pgbouncer_pool_size=p)
        for kind in pool_kinds
        for w in workers
        for m in max_sizes
        for p in (pgbouncer_pool_sizes or [None])
    ]


class Sweep:
    """Runs every cell that fits, `repeat` times; `run()` returns the exit code."""

    def __init__(
        self,
        cells: list[Cell],
        *,
        repeat: int = 1,
        criteria: Criteria,
        echo: Callable[[str], None] = print,
        search: bool = False,
    ) -> None:
        if repeat < 1:
            raise ValueError(f"--repeat must be at least 1, got {repeat}")
        if search and cells and cells[0].config.pgbouncer is not None:
            # The search bisects max_size on the direct budget; behind PgBouncer the server side is another axis.
            raise Refused("--search: bisects max_size on the direct budget; run the whole grid behind --pgbouncer")
        self.cells = cells
        self.runnable = [cell for cell in cells if cell.refused is None]
        if not self.runnable:
            raise Refused(f"refused: no cell fits; {cells[0].refused}; pass --allow-overcommit to run them")
        self.repeat = repeat
        self.search = search
        self.criteria = criteria
        self.echo = echo
        self.limits: ServerLimits = preflight(self.runnable[0].config)
        self.base = self.runnable[0].config
        self.sweep_dir: Path | None = None
        self.plan: dict[str, Any] = {}

    def run(self) -> int:
        self.sweep_dir = unique_dir(self.base.results_dir / f"sweep-{utc_stamp()}")
        self._start_plan()
        started = time.monotonic()
        status = self._run_rounds()
        self.plan["wall_s"] = round(time.monotonic() - started, 1)
        return self._finish(status)

    def _run_rounds(self) -> str:
        if self.search:
            return self._run_search()
        # Rounds, not a cell's repeats back to back: a noisy minute then hits many cells once.
        try:
            for round_number in range(1, self.repeat + 1):
                for cell in self.runnable:
                    if self._run_cell(cell, round_number=round_number) == EXIT_INTERRUPTED:
                        return INTERRUPTED
        except KeyboardInterrupt:  # between two runs; during one the runner stops it and says so
            return INTERRUPTED
        return FINISHED

    def _run_search(self) -> str:
        """Only the cells the search asks for, each `repeat` times (loadtests/sweep/search.py)."""
        assert self.sweep_dir is not None
        by_key = {cell.key: cell for cell in self.runnable}

        def evaluate(key: str) -> dict[str, Any]:
            for round_number in range(1, self.repeat + 1):
                if self._run_cell(by_key[key], round_number=round_number) == EXIT_INTERRUPTED:
                    raise KeyboardInterrupt
            assert self.sweep_dir is not None
            return cell_figures(self.sweep_dir, self._cell_record(by_key[key]))

        try:
            ran = search(self.plan["cells"], evaluate, criteria=self.criteria, limits=self.limits,
                         other_clients=self.base.other_clients)
        except KeyboardInterrupt:
            return INTERRUPTED
        self.plan["search"] = {"cells_run": len(ran), "cells_in_grid": len(self.runnable)}
        return FINISHED

    def _run_cell(self, cell: Cell, *, round_number: int) -> int:
        assert self.sweep_dir is not None
        done = sum(len(c["runs"]) for c in self.plan["cells"])
        tag = f"[{done + 1}/{len(self.runnable) * self.repeat} {cell.key}]"
        runner = Runner(
            cell.config.model_copy(update={"results_dir": self.sweep_dir}),
            limits=self.limits,
            echo=lambda line: self.echo(f"{tag} {line}"),
        )
        started = time.monotonic()
        code = runner.run()
        if runner.run_dir is not None:
            self._cell_record(cell)["runs"].append(
                {"run_dir": runner.run_dir.name, "round": round_number, "exit_code": code,
                 "wall_s": round(time.monotonic() - started, 1)}
            )
            self._write_plan()
        return code

    def _cell_record(self, cell: Cell) -> dict[str, Any]:
        return next(record for record in self.plan["cells"] if record["key"] == cell.key)

    def _start_plan(self) -> None:
        assert self.sweep_dir is not None
        base = self.base
        self.plan = {
            "sweep_id": self.sweep_dir.name,
            "status": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "argv": [Redactor()(arg) for arg in sys.argv],
            "repeat": self.repeat,
            "criteria": self.criteria.as_dict(),
            "limits": self.limits.as_dict(),
            "other_clients": base.other_clients,
            "axes": {
                name: sorted({getattr(cell.config, name) for cell in self.cells})
                for name in ("pool_kind", "workers", "max_size")
            } | ({"pgbouncer_pool_size": sorted({cell.config.pooler().default_pool_size for cell in self.cells})}
                 if base.pgbouncer is not None else {}),
            "settings": base.public(),
            "host": host_info(),
            "versions": versions(),
            "cells": [cell.record() for cell in self.cells],
        }
        self._write_plan()

    def _write_plan(self) -> None:
        assert self.sweep_dir is not None
        write_json(self.sweep_dir / SWEEP_JSON, json.loads(Redactor()(json.dumps(self.plan))))

    def _finish(self, status: str) -> int:
        assert self.sweep_dir is not None
        self.plan.update(status=status, ended_at=now_iso())
        self._write_plan()
        summary = summarize_sweep(self.sweep_dir)
        write_json(self.sweep_dir / SWEEP_SUMMARY, summary)
        write_csv(self.sweep_dir / SWEEP_CSV, summary)
        write_sweep_page(self.sweep_dir, summary)
        self._print(summary)
        if status == INTERRUPTED:
            return EXIT_INTERRUPTED
        return EXIT_PASS if summary["recommendation"]["cell"] else EXIT_FAIL

    def _print(self, summary: dict[str, Any]) -> None:
        assert self.sweep_dir is not None
        self.echo(table_text(summary))
        choice = summary["recommendation"]
        if choice["cell"]:
            self.echo(f"recommended: {cell_name(choice)}")
        else:
            self.echo("recommended: none")
        for reason in choice["reasons"]:
            self.echo(f"  - {reason}")
        if choice.get("advice"):
            self.echo("  advice from its run:")
            for line in choice["advice"]:
                self.echo(f"    - {line}")
        for key, why in choice["excluded"].items():
            self.echo(f"  left out {key}: {'; '.join(why)}")
        if "search" in self.plan:
            found = self.plan["search"]
            self.echo(f"--search ran {found['cells_run']} of the grid's {found['cells_in_grid']} cells")
        self.echo(f"table {self.sweep_dir / SWEEP_CSV}, page {self.sweep_dir / SWEEP_HTML}")
        self.echo(f"sweep took {self.plan['wall_s']:g} s")
        self.echo(str(self.sweep_dir))
