"""The app's workers in a report: one colour each, the same in every chart, and each one's share of the load.

A worker is its pid: the sample app names its connections `poolcheck-app:<pid>`
and its pool figures carry the pid, so both sources meet on it.
"""

from __future__ import annotations

from typing import Any

from plotly.colors import qualitative

# Ten well-told-apart colours, then 24 more for a larger deployment.
_PALETTE = (*qualitative.D3, *qualitative.Dark24)


def worker_label(pid: str | int) -> str:
    return f"worker {pid}"


def worker_colors(pids: list[str]) -> dict[str, str]:
    """One colour per worker pid, in the order of the pids (numerically), the same on every chart."""
    ordered = sorted(dict.fromkeys(pids), key=lambda pid: (0, int(pid)) if pid.isdigit() else (1, pid))
    return {pid: _PALETTE[n % len(_PALETTE)] for n, pid in enumerate(ordered)}


def share_rows(summary: dict[str, Any], *, connections: dict[str, list[int]]) -> list[dict[str, Any]]:
    """Each worker's requests (its pool's own count) and connections, with its share of the whole.

    Requests come from the last scrape of each worker's pool (`requests_num`);
    connections from the collector's samples of `pg_stat_activity` (`connections`:
    each worker's count per sample), the share being of the connections held on average.
    """
    per_worker = (summary.get("pool") or {}).get("per_worker") or {}
    pids = list(dict.fromkeys([*per_worker, *connections]))
    served = {pid: int((per_worker.get(pid) or {}).get("requests_total", 0)) for pid in pids}
    total_requests = sum(served.values())
    held = {pid: sum(counts) / len(counts) for pid, counts in connections.items() if counts}
    total_held = sum(held.values())
    rows = []
    for pid in sorted(pids, key=lambda p: (0, int(p)) if p.isdigit() else (1, p)):
        pool = per_worker.get(pid) or {}
        rows.append({
            "pid": pid,
            "requests": served[pid] if pool else None,
            "requests_share": served[pid] / total_requests if pool and total_requests else None,
            "connections_peak": max(connections[pid], default=0) if pid in connections else None,
            "connections_mean": round(held[pid], 1) if pid in held else None,
            "connections_share": held[pid] / total_held if pid in held and total_held else None,
            "connections_opened": pool.get("connections_opened"),
            "waiting_max": pool.get("requests_waiting_max"),
        })
    return rows


def unevenness(rows: list[dict[str, Any]]) -> str:
    """One sentence on how evenly the requests reached the workers ("" when the pools were not scraped)."""
    shares = [row["requests_share"] for row in rows if row["requests_share"] is not None]
    if len(shares) < 2:
        return ""
    even = 1 / len(shares)
    busiest = max(rows, key=lambda row: row["requests_share"] or 0)
    quietest = min((row for row in rows if row["requests_share"] is not None), key=lambda row: row["requests_share"])
    return (
        f"The busiest worker ({busiest['pid']}) served {busiest['requests']} requests ({busiest['requests_share']:.0%},"
        f" {busiest['requests_share'] / even:.1f} x an even share), the quietest ({quietest['pid']})"
        f" {quietest['requests']} ({quietest['requests_share']:.0%})."
    )
