"""The failed requests' own words: the error texts the sample app logged, most frequent first.

The load counts failures by class (db_error, db_connection_closed...); a
team recognises its bug by the text it saw, such as "can't change
'autocommit' now" or "the connection is closed". app/errors.py logs one
line per failed request in the gunicorn log of its host:

    ... poolcheck.app.errors: GET /items/read: db_error (can't change 'autocommit' now: ...)
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from loadtests.run_folder import app_logs

_LINE = re.compile(r"poolcheck\.app\.errors: [A-Z]+ \S+: ([a-z_]+) \((.*)\)$")
# An object's repr in a message names one connection or transaction (its host, port, savepoint):
# "<psycopg.Transaction '_pg3_2' (active) [INTRANS] (host=... port=36833 ...)>" is one text for every request.
_OBJECT_REPR = re.compile(r"<([A-Za-z_][\w.]*)[^<>]*>")
_MOST = 10  # texts kept in the summary; the rest are counted together
OTHER_TEXTS = "other texts"
_TEXT_CHARS = 120


def app_error_texts(run_dir: Path) -> dict[str, int]:
    """`class: text` -> failed requests, the `_MOST` most frequent, from every host's log; every failed
    request the logs name is counted, the rarer texts together under OTHER_TEXTS."""
    counts: Counter[str] = Counter()
    for log in app_logs(run_dir):
        with open(log, encoding="utf-8", errors="replace") as f:
            for line in f:
                found = _LINE.search(line.rstrip("\n"))
                if found:
                    counts[f"{found.group(1)}: {_text(found.group(2))}"] += 1
    kept = dict(counts.most_common(_MOST))
    rest = sum(counts.values()) - sum(kept.values())
    return {**kept, OTHER_TEXTS: rest} if rest else kept


def _text(detail: str) -> str:
    return _OBJECT_REPR.sub(r"<\1>", detail)[:_TEXT_CHARS]
