"""The failed requests' own words in summary.json (loadtests/analysis/app_errors.py): every one counted."""

from __future__ import annotations

from pathlib import Path

from loadtests.analysis.app_errors import OTHER_TEXTS, app_error_texts

PREFIX = "[2026-11-22 04:50:01 +0000] [4242] [WARNING] poolcheck.app.errors: GET /items/read: "


def _line(error_class: str, detail: str) -> str:
    return f"{PREFIX}{error_class} ({detail})\n"


def test_texts_that_differ_only_by_an_objects_repr_are_one_text_and_every_failure_is_counted(tmp_path: Path):
    # As app/errors.py logged them in a real run: the transaction's repr names its savepoint and port.
    lines = [_line("db_connection_closed", "the connection is closed")] * 17
    lines += [_line("db_error", "transaction commit at the wrong nesting level: <psycopg.Transaction (active)"
                                " [INTRANS] (host=127.0.0.1 port=36833 user=app database=poolcheck) at 0x7f>"),
              _line("db_error", "transaction commit at the wrong nesting level: <psycopg.Transaction '_pg3_2'"
                                " (active) [INTRANS] (host=127.0.0.1 port=36833 user=app database=poolcheck) at 0x7f>")]
    # Eleven rarer texts, one request each: more than the summary lists one by one.
    lines += [_line("db_error", f"rare failure number {n}") for n in range(11)]
    lines += [_line("db_connection_closed", "flushing failed: the connection is closed"), "an unrelated line\n"]
    (tmp_path / "gunicorn-h1.log").write_text("".join(lines))
    texts = app_error_texts(tmp_path)
    assert texts["db_connection_closed: the connection is closed"] == 17
    assert texts["db_error: transaction commit at the wrong nesting level: <psycopg.Transaction>"] == 2
    assert sum(texts.values()) == 17 + 2 + 11 + 1  # every failed request the log names, the rarer ones together
    assert texts[OTHER_TEXTS] == 4 and len(texts) == 11  # 17, 2 and 8 of the 12 single ones listed
