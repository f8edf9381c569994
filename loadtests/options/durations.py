"""Durations as Locust and k6 users type them: `90s`, `2m`, `1h`, `500ms`; a bare number keeps the option's own unit."""

from __future__ import annotations

import re
from typing import Any

import click

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")


def parse_duration(text: str, *, bare_unit: str = "s") -> float:
    """Seconds in `text` (`1h`, `2m`, `90s`, `500ms`, `1.5`) expressed in `bare_unit`; ValueError when it is none."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"expected a duration such as 90s, 2m, 1h or 500ms, got {text!r}")
    number, unit = match.groups()
    seconds = float(number) * _UNITS[unit or bare_unit]
    return seconds / _UNITS[bare_unit]


class Duration(click.ParamType):
    """A click type for durations: a float in the option's unit (seconds unless `bare_unit="ms"`).

    `as_int` rounds to a whole number of that unit, for options such as `--hold-ms`.
    """

    name = "duration"

    def __init__(self, *, bare_unit: str = "s", as_int: bool = False) -> None:
        self.bare_unit = bare_unit
        self.as_int = as_int

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | int:
        if isinstance(value, bool):
            self.fail(f"expected a duration such as 90s, 2m, 1h or 500ms, got {value!r}", param, ctx)
        if isinstance(value, (int, float)):
            amount = float(value)
        else:
            try:
                amount = parse_duration(str(value), bare_unit=self.bare_unit)
            except ValueError as exc:
                self.fail(str(exc), param, ctx)
        return round(amount) if self.as_int else amount


SECONDS = Duration()
MILLISECONDS = Duration(bare_unit="ms", as_int=True)
