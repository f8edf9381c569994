"""A worker's own view of the timeline draws the worker's pools, not the whole app's budget."""

from loadtests.analysis.timeline import Connections, Load
from loadtests.present import charts
from loadtests.present.report import worker_limit_line

STATES = ("active", "idle")


def _conn() -> Connections:
    t = [0.0, 1.0]
    views = {"pid:11": [9, 9], "pid:12": [9, 9], "other:pid:13": [3, 3]}
    return Connections(
        t=t, total=[21, 21], states={"active": [10, 10], "idle": [11, 11]}, workers=views,
        worker_states={name: {"active": values, "idle": [0, 0]} for name, values in views.items()},
    )


def _lines(layout: dict) -> set[float]:
    return {shape["y0"] for shape in layout["shapes"] if shape.get("type") == "line" and shape["y0"] == shape["y1"]}


def test_each_workers_view_draws_its_own_pools_and_the_app_views_the_budget():
    summary = {"budget": {"per_worker": 18}}
    limits = [charts.LimitLine("budget", 37, "#1f77b4"), charts.LimitLine("usable", 97, "#ef6c00")]
    marks = charts.Marks(((1.0, 2.0),), ())
    figure = charts.timeline(_conn(), Load(t=[0.0], users=[1], rate_t=[0.0], rps=[1.0], failures_per_s=[0.0]),
                             limits=limits, marks=marks, worker_limit=worker_limit_line(summary),
                             worker_views=["pid:11", "pid:12"])
    buttons = {b["label"]: b["args"][1] for b in figure.layout.updatemenus[0].buttons}
    assert _lines(buttons["all workers by state"]) == {37, 97}
    assert _lines(buttons["pid:11"]) == _lines(buttons["pid:12"]) == {18}
    assert _lines(buttons["other:pid:13"]) == {37, 97}  # another client is no worker: the app's lines
    # The burst mark stays in every view; the page opens on the whole app's lines.
    assert all(any(s["type"] == "rect" for s in layout["shapes"]) for layout in buttons.values())
    assert {s.y0 for s in figure.layout.shapes if s.type == "line"} == {37, 97}
    assert any("worker's pools 18" == a["text"] for a in buttons["pid:11"]["annotations"])
