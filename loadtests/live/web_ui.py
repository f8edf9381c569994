"""Locust's web UI with the database beside the load: a Database tab and a /poolcheck page.

The tab is a table in Locust's own UI (its extension points: extra tabs,
tables and fields added to /stats/requests). The page draws the live
connections by state against the budget, usable and max_connections lines,
with plotly served from this process (no CDN). Both read the run folder the
collector writes, so they show what the headless run would record.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.live.state import ConnectionLines, LiveState
from loadtests.present.pages import render
from loadtests.run_folder import MANIFEST, read_json

logger = logging.getLogger("poolcheck.live_ui")

PAGE = "/poolcheck"
TAB_KEY = "poolcheck-database"
_REFRESH_MS = 1000


def read_connection_lines(run_dir: Path) -> ConnectionLines | None:
    """The lines to draw, from the run's manifest (written before Locust starts)."""
    try:
        manifest = read_json(run_dir / MANIFEST)
    except (OSError, ValueError):
        return None
    server = manifest["server"]
    return ConnectionLines(manifest["budget"]["total"], server["usable"], server["max_connections"])


def table_rows(state: LiveState, limits: ConnectionLines | None) -> list[dict[str, str]]:
    rows = [("connections now", state.connections_now), ("peak", state.peak)]
    if limits is not None:
        rows += [("budget", limits.budget), ("usable", limits.usable), ("max_connections", limits.max_connections)]
    last = state.samples[-1] if state.samples else {}
    rows += [(f"now {name}", last.get(name, 0)) for name in ("active", "idle in transaction", "idle")]
    rows.append(("failures by class", state.failures_text()))
    rows.append(("live chart", PAGE))
    return [{"figure": name, "value": str(value)} for name, value in rows]


def snapshot(state: LiveState, limits: ConnectionLines | None) -> dict[str, Any]:
    """The page's data: recent samples by state, the limits, the load figures."""
    columns = ("t", "active", "idle in transaction", "idle", "other")
    return {
        "samples": {c: [s[c] for s in state.samples] for c in columns},
        "limits": None if limits is None else asdict(limits),
        "now": state.connections_now, "peak": state.peak,
        "users": state.users, "rps": state.rps, "failures": state.failures_text(),
    }


def install(environment: Any) -> None:
    """Add the tab and the page when Locust runs its web UI and writes a run folder."""
    web_ui = environment.web_ui
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if web_ui is None or not prefix:
        return
    run_dir = Path(prefix).parent
    state = LiveState(run_dir)
    web_ui.template_args["extended_tabs"] = [{"title": "Database", "key": TAB_KEY}]
    web_ui.template_args["extended_tables"] = [
        {"key": TAB_KEY, "structure": [{"key": "figure", "title": "Figure"}, {"key": "value", "title": "Value"}]}
    ]
    _add_routes(web_ui, state=state, run_dir=run_dir)
    logger.info("database view at %s", PAGE)


def _add_routes(web_ui: Any, *, state: LiveState, run_dir: Path) -> None:
    from flask import Response, request
    from plotly.offline import get_plotlyjs

    @web_ui.app.after_request
    def _with_database(response: Response) -> Response:
        if request.path != "/stats/requests" or response.status_code != 200:
            return response
        data = json.loads(response.get_data())
        rows = table_rows(state.update(), read_connection_lines(run_dir))
        data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        response.set_data(json.dumps(data))
        return response

    @web_ui.app.route(PAGE)
    def _page() -> str:
        return render("live.html.j2", refresh_ms=_REFRESH_MS)

    @web_ui.app.route(f"{PAGE}/data")
    def _data() -> Response:
        return Response(json.dumps(snapshot(state.update(), read_connection_lines(run_dir))), mimetype="application/json")

    @web_ui.app.route(f"{PAGE}/plotly.js")
    def _plotly() -> Response:
        return Response(get_plotlyjs(), mimetype="application/javascript")
