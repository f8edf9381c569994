"""`poolcheck run --help` shows RunConfig's defaults, and options not given leave a --config file's values alone."""

import re

import click
import pytest

from loadtests.cli import make_config as _config, run
from loadtests.config import RunConfig

_HAND_TYPED = re.compile(r"\[(?!default: )[^\]]*\]")  # a bracket that is not the one the help adds


def _help(option: click.Option) -> str:
    ctx = click.Context(run, terminal_width=1000)
    record = option.get_help_record(ctx)
    return record[1] if record else ""


def _settings() -> list[click.Option]:
    return [p for p in run.params if isinstance(p, click.Option) and p.name in RunConfig.model_fields]


def test_every_run_option_is_a_setting_and_shows_its_default_from_run_config():
    options = _settings()
    assert {p.name for p in run.params} - {p.name for p in options} == {"config_file", "verbose", "json"}
    shown = 0
    for option in options:
        default = RunConfig.model_fields[option.name].get_default(call_default_factory=True)
        if isinstance(default, bool) or default in (None, (), {}):
            continue
        expected = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"[default: {expected}]" in _help(option), option.name
        shown += 1
    assert shown >= 30


def test_on_off_flags_show_the_flag_that_applies():
    options = {p.name: p for p in _settings()}
    assert "[default: --pool-check]" in _help(options["pool_check"])
    assert "[default: --no-preload]" in _help(options["preload"])


def test_no_default_is_typed_in_a_help_text():
    for option in _settings():
        assert not _HAND_TYPED.search(option.help or ""), (option.name, option.help)


def _parsed(*args: str) -> RunConfig:
    params = run.make_context("run", list(args)).params
    params.pop("json")
    return _config(**params)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("max-size = 4\nworkers = 2\npool-check = false\npreload = true\nduration = 30.0\n")
    return path


def test_options_not_given_leave_the_config_file_alone(config_file):
    config = _parsed("--config", str(config_file))
    assert (config.max_size, config.workers, config.pool_check, config.preload, config.duration) == (4, 2, False, True, 30)
    assert config.hosts == RunConfig().hosts  # in neither: RunConfig's default


def test_options_given_override_the_config_file(config_file):
    config = _parsed("--config", str(config_file), "--max-size", "6", "--pool-check", "--no-preload")
    assert (config.max_size, config.workers, config.pool_check, config.preload) == (6, 2, True, False)
