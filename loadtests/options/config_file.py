"""`--config FILE`: a command's settings from a TOML file, fed to click as that command's defaults.

    poolcheck.toml            [run], [sweep], [budget]: one table per command
    pyproject.toml            the same tables under [tool.poolcheck]
    a file without tables     the settings of the command it is given to (the original format)

Keys are the command's long options (`max-size` or `max_size`). The values go through the
options' own types and checks (click's `default_map`), so `duration = "2m"` works and a bad
value gets the message the flag would; environment variables and flags still override them.
Without `--config`, `poolcheck.toml` in the current folder is read, else a pyproject.toml there
that has a [tool.poolcheck] table.
"""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Any

import click

from loadtests.errors import BadInput

STARTER = "poolcheck.toml"
PYPROJECT = "pyproject.toml"
TABLES = ("run", "sweep", "budget")
NOT_IN_FILE = frozenset({"config_file", "verbose", "help", "json"})  # about this invocation, not the setting
logger = logging.getLogger("poolcheck.config")

SOURCE_KEY = "poolcheck.config"  # ctx.meta: where the file's values came from, for error messages


def discover(folder: Path) -> Path | None:
    """The config file a command reads when none is given: poolcheck.toml, else a pyproject.toml with [tool.poolcheck]."""
    if (folder / STARTER).is_file():
        return folder / STARTER
    pyproject = folder / PYPROJECT
    if pyproject.is_file():
        try:
            if "poolcheck" in tomllib.loads(pyproject.read_text()).get("tool", {}):
                return pyproject
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None  # not ours to judge: a broken pyproject.toml is refused only when named with --config
    return None


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"--config {path}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadInput(f"--config {path}: not valid TOML ({exc})") from None


def read_table(path: Path, command: str) -> tuple[dict[str, Any], str]:
    """The settings for `command` in the file, and where they are (`poolcheck.toml [sweep]`)."""
    data, prefix = _read(path), ""
    if path.name == PYPROJECT:
        if not isinstance(data.get("tool", {}).get("poolcheck"), dict):
            raise BadInput(f"--config {path}: no [tool.poolcheck] table")
        data, prefix = data["tool"]["poolcheck"], "tool.poolcheck."
    if not any(isinstance(data.get(table), dict) for table in TABLES):
        return data, f"{path} [{prefix.rstrip('.')}]" if prefix else str(path)
    for key, value in data.items():
        if key not in TABLES or not isinstance(value, dict):
            raise BadInput(f"--config {path}: unknown table or key {prefix}{key!r}; settings go under"
                           f" [{prefix}run], [{prefix}sweep] or [{prefix}budget]")
    return data.get(command, {}), f"{path} [{prefix}{command}]"


def _keys(command: click.Command) -> dict[str, click.Option]:
    """Every key a file may use for the command's options: `max-size`, `max_size`, and the setting's name."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in NOT_IN_FILE:
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                keys[opt[2:]] = keys[opt[2:].replace("-", "_")] = param
        keys[str(param.name)] = param
    return keys


def _as_click_value(param: click.Option, value: Any) -> Any:
    """TOML's types as the option takes them: a table for NAME=VALUE options, a list for comma lists,
    an array of tables (`[[pool]]`: kind = "sync", min = 4, max = 4) as repeated `KIND:key=value,...`."""
    if param.multiple and isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return [_table_as_option(item) for item in value]
    if isinstance(value, dict) and param.multiple:
        return [f"{name}={setting}" for name, setting in value.items()]
    if isinstance(value, list) and not param.multiple:
        return ",".join(str(item) for item in value)
    if param.multiple and not isinstance(value, list):
        return [value]
    return value


def _table_as_option(table: dict[str, Any]) -> str:
    """One `[[pool]]` table in the `--pool` form: `KIND:key=value,...`."""
    rest = ",".join(f"{key}={value}" for key, value in table.items() if key != "kind")
    return f"{table.get('kind', '')}:{rest}"


def default_map(command: click.Command, table: dict[str, Any], where: str) -> dict[str, Any]:
    """click's default_map for the command from a file's table; an unknown key names the table and the key."""
    keys = _keys(command)
    defaults = {}
    for key, value in table.items():
        param = keys.get(key)
        if param is None:
            raise BadInput(f"--config {where}: unknown setting {key!r} for poolcheck {command.name}")
        defaults[str(param.name)] = _as_click_value(param, value)
    return defaults


def load(ctx: click.Context, param: click.Parameter, path: Path | None) -> Path | None:
    """The eager callback of `--config`: the file's table becomes the command's defaults before any option is read."""
    path = path if path is not None else discover(Path.cwd())
    if path is None or ctx.resilient_parsing:
        return path
    assert ctx.command.name is not None
    table, where = read_table(path, ctx.command.name)
    ctx.default_map = {**(ctx.default_map or {}), **default_map(ctx.command, table, where)}
    ctx.meta[SOURCE_KEY] = f"--config {where}"
    logger.info("settings from %s", where)
    return path


def explain(exc: click.BadParameter) -> str:
    """A bad value's message, naming the file and table when the value came from one."""
    ctx, param = exc.ctx, exc.param
    message = exc.format_message()
    if ctx is not None and param is not None and param.name is not None:
        if ctx.get_parameter_source(param.name) is click.core.ParameterSource.DEFAULT_MAP:
            return f"{ctx.meta.get(SOURCE_KEY, '--config')}: {message}"
    return message
