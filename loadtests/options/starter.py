"""The starter poolcheck.toml that `poolcheck init` writes: a table per command, a few settings
set, and every other option commented out with its default and its help, as `--help` shows them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click

from loadtests.options.config_file import NOT_IN_FILE, TABLES

# The settings the starter sets, so that each table works as it is: a small deployment to try.
_SET = {
    "run": {"workers": 2, "max-size": 4, "duration": "30s"},
    "sweep": {"workers": "1,2", "max-size": "2,4", "duration": "20s", "repeat": 1},
    "budget": {"hosts": 2, "workers": 4, "max-size": 8, "max-connections": 100},
}
_INTRO = """\
# poolcheck settings: one table per command (poolcheck run, sweep, budget).
# Keys are the command's long options without the dashes; flags, POOLCHECK_<COMMAND>_<OPTION>
# environment variables (POOLCHECK_RUN_MAX_SIZE=4) and then this file are read, in that order.
# Durations take units: "90s", "2m", "1h", "500ms" (bare numbers are seconds).
# poolcheck reads ./poolcheck.toml by itself, or the file given with --config.
"""


_SHOWN_DEFAULT = re.compile(r"\s*\[(default: [^\]]*|none)\]")


def _toml(value: Any) -> str | None:
    """A default as TOML, or None when there is none to show."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))
    return None


def _default(param: click.Option, ctx: click.Context) -> str | None:
    """The option's default as TOML: its own, else (for run's options, which default to "not given") RunConfig's."""
    from loadtests.config import RunConfig

    value = param.get_default(ctx)
    if not isinstance(value, (bool, int, float, str, Path)):
        value = None  # click's own "no default" marker
    if value in (None, (), {}) and param.name in RunConfig.model_fields:
        value = RunConfig.model_fields[param.name].get_default(call_default_factory=True)
    if param.multiple and value in (None, (), {}):
        return "[]"
    return _toml(value)


def _table(command: click.Command, name: str) -> list[str]:
    ctx = click.Context(command, info_name=name)
    lines = [f"[{name}]"]
    lines += [f"{key} = {_toml(value)}" for key, value in _SET[name].items()]
    for param in command.params:
        if not isinstance(param, click.Option) or param.hidden or param.name in NOT_IN_FILE:
            continue
        key = param.opts[0].lstrip("-")
        if key in _SET[name]:
            continue
        default = _default(param, ctx)
        example = default if default is not None else '""' if param.type is click.STRING else None
        help_text = _SHOWN_DEFAULT.sub("", " ".join((param.help or "").split()))
        if example is not None:
            lines.append(f"# {key} = {example}  # {help_text}")
        else:
            lines.append(f"# {key}: {help_text}")
    return lines


def starter_text(cli: click.Group) -> str:
    tables = [_table(cli.commands[name], name) for name in TABLES]
    return _INTRO + "\n" + "\n\n".join("\n".join(lines) for lines in tables) + "\n"
