import csv

from loadtests.sources.collector import COLUMNS, parse_row, read_connections, reduce_rows, to_row


ROWS = [
    ("active", "poolcheck-app:101", 12.5, None),
    ("idle", "poolcheck-app:101", 30.0, 4.0),
    ("idle", "poolcheck-app:102", 2.0, 1.5),
    ("idle in transaction", "other", 1.0, 0.5),
    ("", "", 0.1, None),
]


def test_reduce_counts_states_and_applications():
    sample = reduce_rows(ROWS, timestamp=1_700_000_000.0, elapsed_s=1.25)
    assert sample.total == 5
    assert sample.states["active"] == 1 and sample.states["idle"] == 2
    assert sample.states["idle_in_transaction"] == 1 and sample.states["other"] == 1
    assert sample.by_application["poolcheck-app:101"] == {"active": 1, "idle": 1}
    assert sample.oldest_backend_s == 30.0
    assert sample.oldest_idle_s == 4.0


def test_row_round_trip():
    sample = reduce_rows(ROWS, timestamp=1_700_000_000.0, elapsed_s=1.25)
    row = dict(zip(COLUMNS, (str(v) for v in to_row(sample))))
    parsed = parse_row(row)
    assert parsed["total"] == 5 and parsed["idle"] == 2 and parsed["elapsed_s"] == 1.25
    assert parsed["by_application"]["poolcheck-app:102"] == {"idle": 1}


def test_a_torn_last_line_is_skipped(tmp_path):
    path = tmp_path / "connections.csv"
    sample = reduce_rows(ROWS, timestamp=1_700_000_000.0, elapsed_s=0.5)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerow(to_row(sample))
    with open(path, "a") as f:
        f.write("2026-01-01T00:00:00+00:00,0.6,3,1")  # a crash mid-write
    rows = read_connections(path)
    assert len(rows) == 1 and rows[0]["total"] == 5
