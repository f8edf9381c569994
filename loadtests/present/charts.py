"""Plotly figures of a run's time series; a page inlines plotly.js once or loads a shared copy (present/plotly_js.py)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from loadtests.analysis.pgbouncer_figures import PoolerSeries
from loadtests.analysis.timeline import Connections, Load

TEMPLATE = "plotly_white"
STATE_COLORS = {"active": "#d62728", "idle in transaction": "#ff7f0e", "idle": "#2ca02c", "other": "#7f7f7f"}
PERCENTILE_COLORS = {"p50": "#1f77b4", "p95": "#ff7f0e", "p99": "#d62728"}
_BURST_FILL = "rgba(255, 165, 0, 0.12)"
_TIME_AXIS = "seconds since the load started"
ALL_STATES = "all workers by state"
# Behind PgBouncer every server connection is PgBouncer's: one band, named so, never "workers".
PGBOUNCER_STATES = "PgBouncer's server connections by state"


@dataclass(frozen=True)
class LimitLine:
    """A connection limit drawn as a horizontal line on the connections chart."""

    label: str
    value: int
    color: str
    dash: str = "dash"


@dataclass(frozen=True)
class Marks:
    """What every time chart of a run shows: burst phases and injected faults."""

    bursts: tuple[tuple[float, float], ...] = ()
    faults: tuple[tuple[float, str], ...] = ()


def to_html(figure: go.Figure, *, div_id: str, include_plotlyjs: bool | str) -> str:
    """A figure as a <div>; a fixed id keeps regenerated pages identical.

    `include_plotlyjs`: True inlines plotly.js, a path ending in .js loads it from there, False leaves it out.
    """
    return figure.to_html(
        full_html=False,
        include_plotlyjs=include_plotlyjs,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )


def _mark(figure: go.Figure, marks: Marks, *, rows: str | int = "all") -> None:
    for n, (start, end) in enumerate(marks.bursts):
        label = {"annotation_text": "burst", "annotation_position": "top left"} if n == 0 else {}
        figure.add_vrect(x0=start, x1=end, fillcolor=_BURST_FILL, line_width=0, layer="below", row=rows, col=1, **label)
    for at, kind in marks.faults:
        figure.add_vline(x=at, line_color="#9467bd", line_dash="dot", row=rows, col=1,
                         annotation_text=kind, annotation_position="top right")


def _layout(figure: go.Figure, *, title: str, height: int) -> go.Figure:
    figure.update_layout(
        template=TEMPLATE, title=title, height=height, hovermode="x unified",
        margin={"l": 60, "r": 30, "t": 60, "b": 50}, legend={"orientation": "h", "y": -0.15},
    )
    return figure


def _step(x: list[float], y: list[Any], name: str, **kwargs: Any) -> go.Scatter:
    """A value holds from its point to the next: samples and gauges."""
    return go.Scatter(x=x, y=y, name=name, mode="lines", line={"shape": "hv", **kwargs.pop("line", {})}, **kwargs)


def _rate(x: list[float], y: list[Any], name: str, **kwargs: Any) -> go.Scatter:
    """A value covers the interval up to its point: rates counted between two history rows."""
    return _step(x, y, name, line={"shape": "vh", **kwargs.pop("line", {})}, **kwargs)


def _connection_traces(conn: Connections, colors: dict[str, str],
                       states_label: str = ALL_STATES) -> tuple[list[go.Scatter], list[list[bool]], list[str]]:
    """Traces of every view (all by state, stacked by worker, one worker by state) and which each view shows."""
    traces: list[go.Scatter] = []
    views: list[tuple[str, list[int]]] = []

    def add(view: str, group: dict[str, list[int]], colors: dict[str, str] | None, visible: bool,
            *, by_worker: bool = False) -> None:
        start = len(traces)
        for name, values in group.items():
            color = {"color": colors[name]} if colors and name in colors else {}
            # Stacked by worker, each worker is a legend entry of its own: a click hides that worker alone.
            traces.append(_step(conn.t, values, name, stackgroup=view, line={"width": 0.5, **color},
                                legendgroup=name if by_worker else view, visible=visible))
        views.append((view, list(range(start, len(traces)))))

    add(states_label, conn.states, STATE_COLORS, True)
    if conn.workers:
        add("stacked by worker", conn.workers, colors, False, by_worker=True)
    for worker, states in conn.worker_states.items():
        add(worker, states, STATE_COLORS, False)
    visibility = [[i in shown for i in range(len(traces))] for _, shown in views]
    return traces, visibility, [name for name, _ in views]


def _view_menu(visibility: list[list[bool]], names: list[str], *, always: int,
               layouts: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """One button a view: the traces it shows, and, in `layouts`, the lines it draws when they differ by view."""
    layouts = layouts or {}
    buttons = [
        {"label": name, "method": "update" if layouts else "restyle",
         "args": [{"visible": shown + [True] * always}, *([layouts[name]] if layouts else [])]}
        for name, shown in zip(names, visibility)
    ]
    return {"buttons": buttons, "direction": "down", "x": 1.0, "xanchor": "right", "y": 1.1, "yanchor": "bottom"}


def timeline(conn: Connections, load: Load, *, limits: list[LimitLine], marks: Marks,
             worker_colors: dict[str, str] | None = None, worker_limit: LimitLine | None = None,
             worker_views: Collection[str] = (), states_label: str = ALL_STATES) -> go.Figure:
    """Connections by state (or by worker) against the limits, and the load on the same axis.

    `worker_colors`: each worker's colour by its label, the same on every chart of the page.
    `worker_limit`: what one worker's pools may hold, the line a view of one of `worker_views`
    draws instead of the whole app's limits.
    """
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.06,
                           specs=[[{}], [{"secondary_y": True}]])
    traces, visibility, names = _connection_traces(conn, worker_colors or {}, states_label)
    for trace in traces:
        figure.add_trace(trace, row=1, col=1)
    figure.add_trace(_rate(load.rate_t, load.rps, "requests/s", line={"color": "#1f77b4"}), row=2, col=1)
    figure.add_trace(_step(load.users_t, load.users, "Locust users", line={"color": "#8c564b", "dash": "dot"}),
                     row=2, col=1, secondary_y=True)
    layouts = _worker_layouts(figure, names, limits=limits, marks=marks, worker_limit=worker_limit,
                              worker_views=worker_views)
    figure.update_yaxes(title_text="connections", rangemode="tozero", row=1, col=1)
    figure.update_yaxes(title_text="requests/s", rangemode="tozero", row=2, col=1)
    figure.update_yaxes(title_text="users", rangemode="tozero", secondary_y=True, row=2, col=1)
    figure.update_xaxes(title_text=_TIME_AXIS, row=2, col=1)
    figure.update_layout(updatemenus=[_view_menu(visibility, names, always=2, layouts=layouts)])
    return _layout(figure, title="Connections and load", height=640)


def _worker_layouts(figure: go.Figure, names: list[str], *, limits: list[LimitLine], marks: Marks,
                    worker_limit: LimitLine | None, worker_views: Collection[str]) -> dict[str, dict[str, Any]]:
    """Draw the whole app's limits and the marks; return each view's lines when a worker's view has its own.

    One worker's connections against the app's budget would say nothing: its
    view draws the worker's own pools' total, with the same burst and fault marks.
    """
    def hline(limit: LimitLine) -> None:
        figure.add_hline(y=limit.value, line_color=limit.color, line_dash=limit.dash, row=1, col=1,
                         annotation_text=f"{limit.label} {limit.value}", annotation_position="top left")

    for limit in limits:
        hline(limit)
    app_shapes, app_notes = len(figure.layout.shapes), len(figure.layout.annotations)
    _mark(figure, marks)
    if worker_limit is None or not set(worker_views) & set(names):
        return {}
    everything = ([s.to_plotly_json() for s in figure.layout.shapes], [a.to_plotly_json() for a in figure.layout.annotations])
    hline(worker_limit)
    own = ([s.to_plotly_json() for s in figure.layout.shapes][app_shapes:],
           [a.to_plotly_json() for a in figure.layout.annotations][app_notes:])
    figure.layout.shapes, figure.layout.annotations = everything  # the first view is the whole app's
    return {name: {"shapes": own[0] if name in worker_views else everything[0],
                   "annotations": own[1] if name in worker_views else everything[1]} for name in names}


def pgbouncer(conn: Connections, pooler: PoolerSeries, *, limits: list[LimitLine], marks: Marks,
              clients_by_worker: dict[str, tuple[list[float], list[int]]] | None = None,
              worker_colors: dict[str, str] | None = None) -> go.Figure:
    """Behind PgBouncer: the app's connections to it and its server connections, on the server's time axis.

    `clients_by_worker`: each worker's pool size from its /metrics (its connections to PgBouncer),
    stacked under SHOW POOLS' count of the same clients.
    """
    figure = go.Figure()
    colors = worker_colors or {}
    for worker, (t, sizes) in (clients_by_worker or {}).items():
        color = {"color": colors[worker]} if worker in colors else {}
        figure.add_trace(_step(t, sizes, f"{worker}: clients (its pool's size)", stackgroup="clients by worker",
                               line={"width": 0.5, **color}))
    figure.add_trace(_step(pooler.t, pooler.clients, "PgBouncer clients (the app's connections)", line={"color": "#1f77b4"}))
    figure.add_trace(_step(pooler.t, pooler.waiting, "clients waiting (cl_waiting)", line={"color": "#d62728", "dash": "dot"}))
    figure.add_trace(_step(pooler.t, pooler.server, "PgBouncer's server connections (SHOW POOLS)", line={"color": "#2ca02c"}))
    figure.add_trace(_step(conn.t, conn.total, "server connections (pg_stat_activity)", line={"color": "#7f7f7f", "dash": "dash"}))
    for limit in limits:
        figure.add_hline(y=limit.value, line_color=limit.color, line_dash=limit.dash,
                         annotation_text=f"{limit.label} {limit.value}", annotation_position="top left")
    _mark(figure, marks, rows=1)
    figure.update_yaxes(title_text="connections", rangemode="tozero")
    figure.update_xaxes(title_text=_TIME_AXIS)
    return _layout(figure, title="PgBouncer: its clients and its server connections", height=420)


def latency(load: Load, *, marks: Marks) -> go.Figure:
    figure = go.Figure()
    for name, values in load.percentiles.items():
        figure.add_trace(_step(load.t, values, name, line={"color": PERCENTILE_COLORS.get(name)}))
    _mark(figure, marks, rows=1)
    figure.update_yaxes(title_text="response time (ms)", rangemode="tozero")
    figure.update_xaxes(title_text=_TIME_AXIS)
    return _layout(figure, title="Latency percentiles (Locust's recent window)", height=360)


def failures(by_class: dict[str, tuple[list[float], list[int]]], load: Load, *, marks: Marks) -> go.Figure:
    """Failures per second stacked by error class, over Locust's own failure rate."""
    figure = go.Figure()
    for name, (t, counts) in by_class.items():
        # Each count covers the second before its timestamp.
        figure.add_trace(go.Bar(x=t, y=counts, name=name, offset=-1.0, width=1.0))
    figure.add_trace(_rate(load.rate_t, load.failures_per_s, "all failures/s (Locust)", line={"color": "#333"}))
    _mark(figure, marks, rows=1)
    figure.update_layout(barmode="stack")
    figure.update_yaxes(title_text="failures per second", rangemode="tozero")
    figure.update_xaxes(title_text=_TIME_AXIS)
    return _layout(figure, title="Failures by class", height=360)


def pool(stats: dict[str, dict[str, tuple[list[float], list[float]]]], *, marks: Marks,
         worker_colors: dict[str, str] | None = None) -> go.Figure:
    """One row per pool figure (requests waiting, wait time, event-loop lag, ...), one line per worker.

    A worker has one colour and one legend entry for every row: clicking it
    hides the worker everywhere, double-clicking shows that worker alone.
    """
    names = list(stats)
    colors = worker_colors or {}
    figure = make_subplots(rows=len(names), cols=1, shared_xaxes=True, subplot_titles=names, vertical_spacing=0.08)
    in_legend: set[str] = set()
    for row, name in enumerate(names, start=1):
        for worker, (t, values) in stats[name].items():
            color = {"color": colors[worker]} if worker in colors else {}
            figure.add_trace(_step(t, values, worker, legendgroup=worker, showlegend=worker not in in_legend,
                                   line=color, hovertemplate=f"{name}: %{{y}}<extra>{worker}</extra>"), row=row, col=1)
            in_legend.add(worker)
    _mark(figure, marks)
    figure.update_xaxes(title_text=_TIME_AXIS, row=len(names), col=1)
    return _layout(figure, title="Pool figures", height=max(260 * len(names), 360))


@dataclass(frozen=True)
class LifecycleWords:
    """The lifecycle chart's names: the server's connections' ages, the limits they are held against, the drain."""

    oldest: str = "oldest connection age (s)"
    idle: str = "longest idle (s)"
    lifetime: str = "max_lifetime"
    idle_limit: str = "max_idle"
    drained: str = "connections back at min_size"


# Behind PgBouncer the server's connections are PgBouncer's: their ages meet its timers, not the pools'.
PGBOUNCER_LIFECYCLE = LifecycleWords(
    oldest="oldest PgBouncer server connection (s)", idle="longest idle PgBouncer server connection (s)",
    lifetime="server_lifetime", idle_limit="server_idle_timeout",
    drained="the pools back at min_size (PgBouncer's clients)",
)


def lifecycle(conn: Connections, drains: list[dict[str, Any]], *, max_lifetime: float | None,
              max_idle: float | None, marks: Marks, words: LifecycleWords = LifecycleWords()) -> go.Figure:
    """Connection ages against max_lifetime and max_idle, and when the connections were back at
    min_size after each burst (the summary's drain, `drains` with each burst's end on the load's axis)."""
    figure = go.Figure()
    figure.add_trace(_step(conn.t, conn.oldest_backend_s, words.oldest, line={"color": "#1f77b4"}))
    figure.add_trace(_step(conn.t, conn.oldest_idle_s, words.idle, line={"color": "#2ca02c"}))
    drained = [d for d in drains if d["drain_s"] is not None]
    figure.add_trace(go.Scatter(
        x=[d["burst_end_load_s"] + d["drain_s"] for d in drained], y=[0] * len(drained), mode="markers+text",
        name=words.drained, text=[f"{d['drain_s']:g} s" for d in drained],
        textposition="top center", marker={"symbol": "triangle-up", "size": 11, "color": "#d62728"},
    ))
    top = max(conn.oldest_backend_s, default=0.0)
    for label, value, color in ((words.lifetime, max_lifetime, "#1f77b4"), (words.idle_limit, max_idle, "#2ca02c")):
        if value and value <= 1.5 * top:  # a limit far above every age would flatten the chart; the title says it
            figure.add_hline(y=value, line_color=color, line_dash="dash", annotation_text=f"{label} {value:g} s")
    _mark(figure, marks, rows=1)
    figure.update_yaxes(title_text="seconds", rangemode="tozero")
    figure.update_xaxes(title_text=_TIME_AXIS)
    title = (f"Connection age ({words.lifetime} {_seconds(max_lifetime)}, {words.idle_limit} {_seconds(max_idle)})"
             " and drain after bursts")
    return _layout(figure, title=title, height=360)


def _seconds(value: float | None) -> str:
    return "not known" if value is None else f"{value:g} s"


def overlay(runs: list[tuple[str, Connections, Load]]) -> go.Figure:
    """Several runs' connections and requests/s on one axis, each from its own load start."""
    figure = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                           subplot_titles=["connections", "requests/s"])
    for n, (name, conn, load) in enumerate(runs):
        color = _PALETTE[n % len(_PALETTE)]
        figure.add_trace(_step(conn.t, conn.total, name, legendgroup=name, line={"color": color}), row=1, col=1)
        figure.add_trace(_rate(load.rate_t, load.rps, f"{name} rps", legendgroup=name, showlegend=False,
                               line={"color": color}), row=2, col=1)
    figure.update_yaxes(rangemode="tozero")
    figure.update_xaxes(title_text=_TIME_AXIS, row=2, col=1)
    return _layout(figure, title="Connections and requests/s, runs overlaid", height=620)


_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
