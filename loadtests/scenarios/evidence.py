"""What a scenario's half shows beside its figures: one real error of each class, from the app's own log.

The sample app logs every failed request once, as its error class and the
first line of the exception (app/errors.py, `error_response`): the message a
user would recognise ("the connection is closed") is there, not in Locust's
files, which keep only the class.
"""

from __future__ import annotations

import re
from pathlib import Path

from loadtests.run_folder import app_logs

_FAILED_REQUEST = re.compile(r"\] (?:[\w.]+: )?(?P<method>[A-Z]+) (?P<path>/\S*): (?P<error_class>[a-z_]+) \((?P<detail>.*)\)\s*$")
_LONGEST = 200  # characters of a message kept: the first line of an exception can be long


def error_examples(run_dir: Path) -> dict[str, str]:
    """{error class: "METHOD PATH: message"}, the first failed request of each class in the app's logs."""
    examples: dict[str, str] = {}
    for log in app_logs(run_dir):
        with open(log, errors="replace") as f:
            for line in f:
                match = _FAILED_REQUEST.search(line)
                if match and match["error_class"] not in examples:
                    detail = match["detail"][:_LONGEST]
                    examples[match["error_class"]] = f"{match['method']} {match['path']}: {detail}"
    return dict(sorted(examples.items()))
