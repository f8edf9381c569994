"""RunFolder: each file read once, and the run's two clocks defined in one place."""

from __future__ import annotations

from pathlib import Path

from loadtests.analysis.folder import RunFolder
from loadtests.run_folder import CONNECTIONS_CSV, LOAD_JSON, LOCUST_HISTORY_CSV, MANIFEST, epoch, write_json
from loadtests.sources.collector import COLUMNS, collector_start

STARTED = "2026-01-02T03:04:00.000+00:00"
FIRST_SAMPLE = "2026-01-02T03:04:05.500+00:00"


def _manifest(folder: Path, **extra: str) -> None:
    write_json(folder / MANIFEST, {"run_id": folder.name, "started_at": STARTED, **extra})


def _connections(folder: Path, *, torn: bool = False) -> Path:
    path = folder / CONNECTIONS_CSV
    row = f'{FIRST_SAMPLE},0.500,1,1,0,0,0,0,1.000,0.000,0.50,"{{""poolcheck-app:7"":{{""active"":1}}}}"\n'
    path.write_text(",".join(COLUMNS) + "\n" + (row[:20] if torn else row))
    return path


def _history(folder: Path, *timestamps: int) -> None:
    header = "Timestamp,User Count,Type,Name,Total Request Count,Total Failure Count\n"
    rows = "".join(f"{t},2,,Aggregated,0,0\n" for t in timestamps)
    (folder / LOCUST_HISTORY_CSV).write_text(header + f"{timestamps[0]},2,GET,/items/read,0,0\n" + rows)


def test_load_start_is_the_recorded_start_then_locusts_first_row_then_the_runners(tmp_path):
    _manifest(tmp_path, load_started_at="2026-01-02T03:04:09.000+00:00")
    assert RunFolder(tmp_path).load_start == epoch("2026-01-02T03:04:09.000+00:00")
    _history(tmp_path, 1795306340, 1795306341)
    assert RunFolder(tmp_path).load_start == 1795306340.0
    write_json(tmp_path / LOAD_JSON, {"started_at_epoch": 1795306339.25})
    assert RunFolder(tmp_path).load_start == 1795306339.25


def test_a_load_that_never_started_has_no_start(tmp_path):
    _manifest(tmp_path)
    assert RunFolder(tmp_path).load_start is None


def test_the_collectors_clock_starts_at_its_first_sample_less_its_elapsed_time(tmp_path):
    _manifest(tmp_path)
    assert RunFolder(tmp_path).clock_origin == epoch(STARTED)  # no sample: the run's start
    path = _connections(tmp_path)
    assert RunFolder(tmp_path).clock_origin == epoch(FIRST_SAMPLE) - 0.5
    assert collector_start(path) == epoch(FIRST_SAMPLE) - 0.5


def test_the_collectors_start_is_unknown_until_its_first_row_is_whole(tmp_path):
    assert collector_start(_connections(tmp_path, torn=True)) is None
    assert collector_start(tmp_path / "missing.csv") is None


def test_each_file_is_read_once_and_the_records_again_when_told(tmp_path):
    _manifest(tmp_path, status="running")
    path = _connections(tmp_path)
    folder = RunFolder(tmp_path)
    assert len(folder.connections) == 1 and folder.manifest["status"] == "running"
    path.unlink()
    _manifest(tmp_path, status="finished")
    assert len(folder.connections) == 1 and folder.manifest["status"] == "running"
    folder.forget_records()
    assert folder.manifest["status"] == "finished"
    assert len(folder.connections) == 1  # the data files stay as first read
