"""sweep.html: heatmaps of throughput, p95 and peak connections over workers x max_size, with the table.

A pure function of the sweep's summary; plotly.js is inlined, or loaded from the plotly.min.js the
sweep's folder shares with its runs' reports (--plotlyjs directory, a sweep's default).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from jinja2 import Environment
from plotly.subplots import make_subplots

from loadtests.present.plotly_js import INLINE, script_source
from loadtests.run_folder import read_json, write_atomically
from loadtests.sweep.recommend import cell_name
from loadtests.sweep.table import SWEEP_SUMMARY, TABLE_HEADERS, table_rows

logger = logging.getLogger("poolcheck.sweep_report")

SWEEP_HTML = "sweep.html"
METRICS = (
    # summary row key, title, colour scale (darker is better for throughput, worse for the others)
    ("rps", "throughput (req/s, median)", "Viridis"),
    ("p95_ms", "p95 latency (ms, median)", "Reds"),
    ("peak_sampled", "peak connections (sampled)", "Blues"),
)

_PAGE = Environment(autoescape=True).from_string(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>poolcheck sweep {{ s.sweep_id }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; font-size: 0.85rem; } td, th { padding: 0.2rem 0.6rem; border-bottom: 1px solid #ddd; }
th { text-align: left; } tr.recommended { background: #e6f4ea; font-weight: 600; } tr.refused { color: #999; }
.verdict { padding: 0.6rem 1rem; border-left: 6px solid {{ '#2ca02c' if choice.cell else '#d62728' }}; background: #f7f7f7; }
</style></head><body>
<h1>Pool-size sweep {{ s.sweep_id }}</h1>
<p>status {{ s.status }}; {{ s.repeat }} run(s) per cell; usable connections {{ s.limits.usable }}
(max_connections {{ s.limits.max_connections }} - superuser_reserved {{ s.limits.superuser_reserved_connections }}
- reserved {{ s.limits.reserved_connections }}); headroom {{ (s.criteria.headroom_ratio * 100) | round(1) }} %;
SLO p95 {{ s.criteria.slo_p95_ms ~ ' ms' if s.criteria.slo_p95_ms is not none else 'not set' }};
max failure ratio {{ s.criteria.max_failure_ratio }}{% if s.thresholds %};
thresholds every run must meet: {% for t in s.thresholds %}<code>{{ t }}</code> {% endfor %}{% endif %}.</p>
<div class="verdict"><h2>Recommended: {{ title }}</h2><ul>
{% for reason in choice.reasons %}<li>{{ reason }}</li>{% endfor %}</ul>
{% if choice.advice %}<h3>Advice from its run</h3><ul>{% for line in choice.advice %}<li>{{ line }}</li>{% endfor %}</ul>{% endif %}</div>
{% if choice.excluded %}<h3>Left out</h3><ul>
{% for key, why in choice.excluded.items() %}<li><b>{{ key }}</b>: {{ why | join('; ') }}</li>{% endfor %}</ul>{% endif %}
{{ figure | safe }}
<h2>Table</h2>
<table><tr><th>cell</th>{% for h in headers[1:] %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row, cells in rows %}<tr class="{{ 'recommended' if row.recommended else row.status }}">
{% for c in cells %}<td>{% if loop.first and row.run_dirs %}<a href="{{ row.run_dirs[-1] }}/report.html" title="{{ row.key }}: its run's report">{{ row.key }}</a>{% elif loop.first %}{{ row.key }}{% else %}{{ c }}{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>
<p>Each cell is a full run with a fresh server; its run folder holds the details:
{% for row, _ in rows %}{% for d in row.run_dirs %}<a href="{{ d }}/report.html"><code>{{ d }}</code></a> {% endfor %}{% endfor %}</p>
</body></html>
"""
)


def _grid(rows: list[dict[str, Any]], *, pool_kind: str, key: str) -> dict[str, Any]:
    """The metric over workers (y) x max_size (x) for one pool kind, with a label per cell."""
    mine = {(row["workers"], row["max_size"]): row for row in rows if row["pool_kind"] == pool_kind}
    workers = sorted({w for w, _ in mine})
    sizes = sorted({m for _, m in mine})
    cells = [[mine.get((w, m)) for m in sizes] for w in workers]
    return {
        "x": [str(m) for m in sizes],
        "y": [str(w) for w in workers],
        "z": [[row.get(key) if row else None for row in line] for line in cells],
        "text": [[_label(row, key) if row else "" for row in line] for line in cells],
    }


def _label(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    text = "" if value is None else f"{value:g}"
    if row["recommended"]:
        text += "<br>★ recommended"
    elif not row["fits"] and value is not None:
        text += "<br>over budget"
    return text


def _refused_marks(rows: list[dict[str, Any]], *, pool_kind: str) -> list[go.Scatter]:
    """A cross on each cell that was not run because it is over budget: a heatmap leaves it blank."""
    refused = [row for row in rows if row["pool_kind"] == pool_kind and row["status"] == "refused"]
    if not refused:
        return []
    return [
        go.Scatter(
            x=[str(r["max_size"]) for r in refused], y=[str(r["workers"]) for r in refused], mode="markers+text",
            marker={"symbol": "x-thin-open", "size": 26, "color": "#d62728", "line": {"width": 2, "color": "#d62728"}},
            text=["over budget"] * len(refused), textposition="bottom center", hoverinfo="text",
            hovertext=[r.get("refused") or "refused" for r in refused], showlegend=False,
        )
    ]


def _panel(row: dict[str, Any]) -> str:
    """A row of heatmaps: a pool kind, and behind PgBouncer one of its pool sizes."""
    size = row.get("pgbouncer_pool_size")
    return row["pool_kind"] if size is None else f"{row['pool_kind']}, PgBouncer default_pool_size {size}"


def heatmaps(summary: dict[str, Any]) -> go.Figure:
    """One row of heatmaps per pool kind (and PgBouncer pool size): throughput, p95, peak connections."""
    rows = [{**row, "pool_kind": _panel(row)} for row in summary["rows"]]
    kinds = sorted({row["pool_kind"] for row in rows})
    titles = [f"{kind}: {title}" for kind in kinds for _, title, _ in METRICS]
    figure = make_subplots(rows=len(kinds), cols=len(METRICS), subplot_titles=titles, horizontal_spacing=0.06)
    for r, kind in enumerate(kinds, start=1):
        for c, (key, title, scale) in enumerate(METRICS, start=1):
            figure.add_trace(
                go.Heatmap(**_grid(rows, pool_kind=kind, key=key), colorscale=scale, showscale=False,
                           texttemplate="%{text}",
                           hovertemplate=f"workers %{{y}}, max_size %{{x}}<br>{title}: %{{z}}<extra></extra>"),
                row=r, col=c,
            )
            for mark in _refused_marks(rows, pool_kind=kind):
                figure.add_trace(mark, row=r, col=c)
            figure.update_xaxes(title_text="max_size", type="category", row=r, col=c)
            figure.update_yaxes(title_text="workers" if c == 1 else None, type="category", row=r, col=c)
    figure.update_layout(template="plotly_white", height=330 * len(kinds) + 60, margin={"t": 60, "b": 40},
                         title="cells over budget are refused unless --allow-overcommit; ★ the recommended cell")
    return figure


def render(summary: dict[str, Any], *, plotlyjs: bool | str = True) -> str:
    """The whole page as one HTML string; `plotlyjs` True inlines plotly.js, a path loads it from there."""
    choice = summary["recommendation"]
    figure = heatmaps(summary).to_html(full_html=False, include_plotlyjs=plotlyjs, div_id="sweep-heatmaps",
                                       config={"displaylogo": False, "responsive": True})
    return _PAGE.render(
        s=summary,
        choice=choice,
        title=cell_name(choice) if choice["cell"] else "none",
        figure=figure,
        headers=TABLE_HEADERS,
        rows=list(zip(summary["rows"], table_rows(summary))),
    )


def write_sweep_page(sweep_dir: Path, summary: dict[str, Any] | None = None) -> Path:
    """Write sweep.html from the summary (read from the folder when not given)."""
    summary = summary if summary is not None else read_json(sweep_dir / SWEEP_SUMMARY)
    mode = summary.get("plotlyjs", INLINE)
    path = write_atomically(sweep_dir / SWEEP_HTML,
                            render(summary, plotlyjs=script_source(mode, page_dir=sweep_dir, shared_dir=sweep_dir)))
    logger.info("wrote %s", path)
    return path
