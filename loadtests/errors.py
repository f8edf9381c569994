"""The package's exceptions and exit codes, in one place.

Every command exits with one of the EXIT_ codes; `poolcheck` prints bad input
and refusals as one line on stderr with EXIT_REFUSED, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

EXIT_PASS, EXIT_FAIL, EXIT_REFUSED, EXIT_INTERRUPTED = 0, 1, 2, 130


class Refused(Exception):
    """The run must not start: bad input or a budget that does not fit."""


class BadInput(click.ClickException):
    """A command line that cannot be acted on: one line on stderr, nothing started."""

    exit_code = EXIT_REFUSED


class ProcessError(RuntimeError):
    """A child process failed to start, or died before it was ready.

    Like mirakuru's errors it names the process and, when there is one, the log
    that says why: `name` and `log_path`.
    """

    def __init__(self, message: str, *, name: str = "", log_path: Path | None = None) -> None:
        self.name = name
        self.log_path = log_path
        super().__init__(message if log_path is None else f"{message}; see {log_path}")


class Interrupted(Exception):
    """The user asked the run to stop (Ctrl-C or SIGTERM)."""


class LogTimezoneError(ValueError):
    """The log's timestamps name a zone that cannot be placed (an abbreviation such as CET)."""
