"""What the commands share: options for RunConfig's fields with its defaults shown, -v, --config, --json."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import rich_click as click
from pydantic import ValidationError

from loadtests.config import RunConfig, describe_error
from loadtests.errors import BadInput
from loadtests.options import config_file
from loadtests.sweep.recommend import Criteria

SWEEP_DEFAULTS = Criteria()  # a sweep's defaults


def default_of(name: str) -> Any:
    """RunConfig's default for the setting `name`: the one place a default is written."""
    return RunConfig.model_fields[name].get_default(call_default_factory=True)


def with_default(help_text: str, name: str, *, flags: tuple[str, str] | None = None) -> str:
    """`help_text` ending in `[default: ...]` from RunConfig; nothing added when there is no default to show.

    `flags` is an on/off pair such as ("--preload", "--no-preload"): the default is the one that applies.
    """
    default = default_of(name)
    if isinstance(default, bool):
        shown = (flags[0] if default else flags[1]) if flags else ("on" if default else None)
    elif default is None or (isinstance(default, (tuple, dict)) and not default):
        shown = None
    else:
        shown = f"{default:g}" if isinstance(default, float) else str(default)
    return help_text if shown is None else f"{help_text}  [default: {shown}]"


def setting(*decls: str, help: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option of `poolcheck run` for the RunConfig field it names, its help showing RunConfig's default.

    The option's own default stays None (or empty): a setting not given on
    the command line must not override the same setting in a --config file.
    """
    names = [d for d in decls if d.isidentifier()]
    first, _, off = decls[0].partition("/")
    name = names[0] if names else first.lstrip("-").replace("-", "_")
    if attrs.get("is_flag") or off:
        attrs["default"] = None  # click's own default for a flag is False, which would override the file
    return click.option(*decls, help=with_default(help, name, flags=(first, off) if off else None), **attrs)


def make_config(**options: Any) -> RunConfig:
    """The run's settings: those given (flags, POOLCHECK_* variables, the --config file), then RunConfig's defaults."""
    try:
        return RunConfig(**{k: v for k, v in options.items() if v is not None and v != () and v != {}})
    except ValidationError as exc:
        raise BadInput(describe_error(exc)) from None


def verbosity(ctx: click.Context, param: click.Parameter, verbose: bool) -> None:
    if verbose or not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            force=verbose,
        )


def common(*, config: bool = False, json: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options every command has: -v (also after the subcommand), and where they apply --config and --json."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        function = click.option("-v", "--verbose", is_flag=True, expose_value=False, is_eager=True, callback=verbosity,
                                help="Log what the harness does.")(function)
        if config:
            function = click.option(
                "--config", "config_file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
                is_eager=True, expose_value=False, callback=config_file.load,
                help="TOML file: its [run], [sweep] or [budget] table (or [tool.poolcheck.*] in a pyproject.toml);"
                     " options given here override it  [default: ./poolcheck.toml, else ./pyproject.toml's [tool.poolcheck]]",
            )(function)
        if json:
            function = click.option("--json", "json", is_flag=True, help=json)(function)
        return function

    return decorate


def server_setting(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    settings = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}")
        settings[name.strip()] = setting.strip()
    return settings


def pool_sizes_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(size) for size in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated pool sizes, e.g. 4,4,10, got {value!r}") from None


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def run_folders(paths: tuple[Path, ...]) -> list[Path]:
    """Folders that hold a run: a manifest.json at least."""
    from loadtests.run_folder import MANIFEST

    for path in paths:
        if not (path / MANIFEST).is_file():
            raise BadInput(f"{path}: not a run folder (no {MANIFEST})")
    return list(paths)


def from_run_config(*decls: str, help: str, **attrs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """An option of another command for a RunConfig field, with RunConfig's default (shown, and applied)."""
    name = decls[0].lstrip("-").replace("-", "_")
    return click.option(*decls, default=default_of(name), show_default=True, help=help, **attrs)
