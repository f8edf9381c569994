"""Locust's web UI with the database beside the load: a Database tab and a /poolcheck page.

The tab is a table in Locust's own UI (its extension points: extra tabs,
tables and fields added to /stats/requests); Locust's tables show text only,
so a small script added to its page puts the live chart under the table and
makes the page's address a link. The page draws the live connections by
state against the budget, usable and max_connections lines, with plotly
served from this process (no CDN). Both read the run folder the collector
writes, so they show what the headless run would record.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from loadtests.budget import ServerSideBudget
from loadtests.config_views import COLLECTOR_CLIENTS
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
    # Behind PgBouncer (recorded before Locust starts) the server's connections are its server pools'.
    pooler = (manifest.get("pgbouncer") or {}).get("budget")
    side = ServerSideBudget.of(manifest["budget"], pooler, harness_clients=COLLECTOR_CLIENTS)
    return ConnectionLines.of(side, usable=server["usable"], max_connections=server["max_connections"])


class CloseDown:
    """When Locust's UI closes: `--autoquit` seconds after the test stopped (-1: it stays up)."""

    def __init__(self, autoquit: float) -> None:
        self.autoquit = autoquit
        self.stopped_at: float | None = None

    def stopped(self, **_: Any) -> None:
        self.stopped_at = time.monotonic()

    def started(self, **_: Any) -> None:
        self.stopped_at = None

    def closes_in_s(self) -> float | None:
        if self.stopped_at is None or self.autoquit < 0:
            return None
        return round(max(self.autoquit - (time.monotonic() - self.stopped_at), 0.0))


def table_rows(state: LiveState, limits: ConnectionLines | None, *, closes_in_s: float | None = None) -> list[dict[str, str]]:
    rows: list[tuple[str, Any]] = []
    if closes_in_s is not None:
        rows.append(("the load is over: this UI closes in", f"{closes_in_s:g} s"))
    rows += [("connections now", state.connections_now), ("peak", state.peak)]
    if limits is not None:
        rows += [("budget", limits.budget)]
        if limits.pools is not None:
            rows += [(f"of which the {limits.pools_name}", limits.pools), ("of which the harness and other clients", limits.budget - limits.pools)]
        rows += [("usable", limits.usable), ("max_connections", limits.max_connections)]
    last = state.samples[-1] if state.samples else {}
    rows += [(f"now {name}", last.get(name, 0)) for name in ("active", "idle in transaction", "idle")]
    rows.append(("users", state.users))
    rows.append(("requests/s", f"{state.rps:.1f}"))
    rows.append(("failures by class", state.failures_text()))
    rows.append(("live chart", PAGE))
    return [{"figure": name, "value": str(value)} for name, value in rows]


def snapshot(state: LiveState, limits: ConnectionLines | None, *, closes_in_s: float | None = None) -> dict[str, Any]:
    """The page's data: recent samples by state, the limits, the load figures, the UI's close-down."""
    columns = ("t", "active", "idle in transaction", "idle", "other")
    return {
        "samples": {c: [s[c] for s in state.samples] for c in columns},
        "limits": None if limits is None else {**asdict(limits), "budget_text": limits.budget_text()},
        "now": state.connections_now, "peak": state.peak,
        "users": state.users, "rps": round(state.rps, 1), "failures": state.failures_text(),
        "closes_in_s": closes_in_s,
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
    close_down = CloseDown(float(getattr(environment.parsed_options, "autoquit", -1)))
    environment.events.test_stop.add_listener(close_down.stopped)
    environment.events.test_start.add_listener(close_down.started)
    _add_routes(web_ui, state=state, run_dir=run_dir, close_down=close_down)
    logger.info("database view at %s", PAGE)


def _add_routes(web_ui: Any, *, state: LiveState, run_dir: Path, close_down: CloseDown) -> None:
    from flask import Response, request
    from plotly.offline import get_plotlyjs

    @web_ui.app.after_request
    def _with_database(response: Response) -> Response:
        if response.status_code != 200:
            return response
        if request.path == "/" and response.mimetype == "text/html":
            # Locust's page, with the script that puts the live chart into the Database tab.
            page = response.get_data(as_text=True)
            response.set_data(page.replace("</body>", f'<script src="{PAGE}/tab.js"></script></body>', 1))
            return response
        if request.path != "/stats/requests":
            return response
        data = json.loads(response.get_data())
        rows = table_rows(state.update(), read_connection_lines(run_dir), closes_in_s=close_down.closes_in_s())
        data["extended_stats"] = [{"key": TAB_KEY, "data": rows}]
        response.set_data(json.dumps(data))
        return response

    @web_ui.app.route(PAGE)
    def _page() -> str:
        embedded = request.args.get("embed") == "1"  # inside the Database tab: the chart alone
        return render("live.html.j2", refresh_ms=_REFRESH_MS, embedded=embedded)

    @web_ui.app.route(f"{PAGE}/tab.js")
    def _tab_script() -> Response:
        return Response(render("live_tab.js.j2", page=PAGE, tab_key=TAB_KEY), mimetype="application/javascript")

    @web_ui.app.route(f"{PAGE}/data")
    def _data() -> Response:
        data = snapshot(state.update(), read_connection_lines(run_dir), closes_in_s=close_down.closes_in_s())
        return Response(json.dumps(data), mimetype="application/json")

    @web_ui.app.route(f"{PAGE}/plotly.js")
    def _plotly() -> Response:
        return Response(get_plotlyjs(), mimetype="application/javascript")
