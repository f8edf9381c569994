"""The drain after a burst: only for bursts that ran and ended before the load did, never the teardown.

Constructed run folders: a shape of two bursts, connections sampled every
half second, and a load that ends where each case says.
"""

from __future__ import annotations

import json
from pathlib import Path

from loadtests.analysis.folder import RunFolder
from loadtests.analysis.sections import accounting_lines, lifecycle_figures
from loadtests.run_folder import CONNECTIONS_CSV, LOAD_JSON, MANIFEST, iso_time, write_json
from loadtests.sources.collector import COLUMNS

LOAD_START = 1_795_306_340.0
SHAPE = [
    {"start_s": 0.0, "end_s": 5.0, "phase": "quiet", "users": 2},
    {"start_s": 5.0, "end_s": 8.0, "phase": "burst", "users": 12},
    {"start_s": 8.0, "end_s": 13.0, "phase": "quiet", "users": 2},
    {"start_s": 13.0, "end_s": 16.0, "phase": "burst", "users": 12},
    {"start_s": 16.0, "end_s": 30.0, "phase": "quiet", "users": 2},
]
CONFIG = {"hosts": 1, "workers": 2, "min_size": 1, "max_size": 4, "max_idle": 1.0, "max_lifetime": 3600.0,
          "baseline_users": 2, "prod_max_idle": 600.0}


def _folder(path: Path, *, counts: list[tuple[float, int]], load_ended_s: float | None, **manifest: object) -> RunFolder:
    """A run folder whose app connections are `counts` (seconds of the load, connections per worker)."""
    ended = {"load_ended_at": iso_time(LOAD_START + load_ended_s)} if load_ended_s is not None else {}
    write_json(path / MANIFEST, {"run_id": path.name, "app_name": None, "config": CONFIG, "shape": SHAPE,
                                 "server": {"embedded": True}, "started_at": iso_time(LOAD_START - 1), **ended,
                                 **manifest})
    write_json(path / LOAD_JSON, {"started_at_epoch": LOAD_START})
    lines = [",".join(COLUMNS)]
    for t, per_worker in counts:
        apps = {f"poolcheck-app:{pid}": {"idle": per_worker} for pid in (11, 12)} if per_worker else {}
        row = {"timestamp": iso_time(LOAD_START + t), "elapsed_s": f"{t + 1:.3f}", "total": 2 * per_worker,
               "active": 0, "idle": 2 * per_worker, "idle_in_transaction": 0, "idle_in_transaction_aborted": 0,
               "other": 0, "oldest_backend_s": 1.0, "oldest_idle_s": 0.5, "query_ms": 1.0,
               "by_application": json.dumps(apps).replace('"', '""')}
        lines.append(",".join(f'"{row[c]}"' if c == "by_application" else str(row[c]) for c in COLUMNS))
    (path / CONNECTIONS_CSV).write_text("\n".join(lines) + "\n")
    return RunFolder(path)


def _steps(until: float, *, level: dict[float, int]) -> list[tuple[float, int]]:
    """A sample every half second up to `until`, at the count of the last `level` step at or before it."""
    out, t = [], 0.0
    while t <= until + 1e-9:
        out.append((t, level[max(k for k in level if k <= t)]))
        t += 0.5
    return out


def test_an_interrupted_run_has_no_drain_for_the_bursts_it_never_ran(tmp_path):
    # Interrupted 2 s into the quiet phase after burst 1; the teardown closed everything at 10.5 s.
    counts = _steps(12.0, level={0.0: 1, 5.0: 4, 10.5: 0})
    drain = lifecycle_figures(_folder(tmp_path, counts=counts, load_ended_s=10.0, status="interrupted"), log=None)["drain"]
    assert len(drain["bursts"]) == 1  # burst 2 (13 s) never ran
    (burst,) = drain["bursts"]
    assert burst["quiet_s"] == 2.0 and burst["drained"] is False and burst["left_at_quiet_end"] == 8
    lines = accounting_lines({"lifecycle": {"drain": drain}})
    assert not any("burst 2" in line for line in lines), lines


def test_an_old_interrupted_folder_ends_its_load_with_locusts_last_history_row(tmp_path):
    counts = _steps(12.0, level={0.0: 1, 5.0: 4, 10.5: 0})
    folder = _folder(tmp_path, counts=counts, load_ended_s=None, status="interrupted")
    (tmp_path / "locust_stats_history.csv").write_text(
        "Timestamp,User Count,Type,Name\n" + "".join(f"{int(LOAD_START) + s},2,,Aggregated\n" for s in range(9))
    )
    assert folder.load_end == LOAD_START + 9.0
    assert len(lifecycle_figures(folder, log=None)["drain"]["bursts"]) == 1


def test_the_teardown_is_no_drain(tmp_path):
    # The load stopped 0.04 s after burst 1 ended; the teardown closed the connections at 8.5 s.
    counts = _steps(12.0, level={0.0: 1, 5.0: 4, 8.5: 0})
    drain = lifecycle_figures(_folder(tmp_path, counts=counts, load_ended_s=8.04), log=None)["drain"]
    (burst,) = drain["bursts"]
    assert burst["quiet_s"] == 0 and burst["drained"] is False and burst["drain_s"] is None
    assert "not measured" in accounting_lines({"lifecycle": {"drain": drain}})[0]


def test_a_finished_run_measures_each_drain_within_its_quiet_phase(tmp_path):
    counts = _steps(31.0, level={0.0: 1, 5.0: 4, 9.5: 1, 13.0: 4, 18.0: 1, 30.5: 0})
    drain = lifecycle_figures(_folder(tmp_path, counts=counts, load_ended_s=30.2), log=None)["drain"]
    assert [b["drain_s"] for b in drain["bursts"]] == [1.5, 2.0]
    assert [b["quiet_s"] for b in drain["bursts"]] == [5.0, 14.0]
