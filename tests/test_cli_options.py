"""The options of every command: the same settings from flags, POOLCHECK_* variables and --config
tables, durations with units, -v after the subcommand, one name per setting, `poolcheck init`."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from pathlib import Path

import click
import jsonschema
import pytest

from loadtests.cli import cli, main, make_config as _config
from loadtests.config import RunConfig, _option
from loadtests.options.durations import parse_duration

ROOT = Path(__file__).resolve().parents[1]


def _params(command: str, *args: str) -> dict:
    """The values a command would run with: parsed as `poolcheck COMMAND ARGS`, environment and config file included."""
    parent = cli.make_context("poolcheck", [command])
    return cli.commands[command].make_context(command, list(args), parent=parent).params


def _run_config(*args: str) -> RunConfig:
    params = _params("run", *args)
    params.pop("json")
    return _config(**params)


def _refusal(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(list(argv))
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture(autouse=True)
def _own_folder(tmp_path, monkeypatch):
    """No poolcheck.toml of the checkout or the developer is read by accident; no POOLCHECK_* leaks in."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in __import__("os").environ if n.startswith("POOLCHECK")]:
        monkeypatch.delenv(name)


FLAGS = ["--workers", "2", "--max-size", "4", "--duration", "90s", "--hold-ms", "200ms", "--no-pool-check",
         "--server-setting", "idle_session_timeout=5s", "--fault", "worker-kill@30", "--max-connections", "60",
         "--pool-timeout", "1.5"]
ENV = {"WORKERS": "2", "MAX_SIZE": "4", "DURATION": "1.5m", "HOLD_MS": "0.2s", "POOL_CHECK": "false",
       "SERVER_SETTINGS": "idle_session_timeout=5s", "FAULTS": "worker-kill@30", "MAX_CONNECTIONS": "60",
       "POOL_TIMEOUT": "1500ms"}
TABLE = """workers = 2
max-size = 4
duration = "90s"
hold_ms = 200
pool-check = false
server-setting = { idle_session_timeout = "5s" }
fault = ["worker-kill@30"]
max-connections = 60
pool-timeout = 1.5
"""


def test_flags_environment_and_every_kind_of_config_file_set_the_same_settings(tmp_path, monkeypatch):
    from_flags = _run_config(*FLAGS)
    assert from_flags != RunConfig()
    assert (from_flags.duration, from_flags.hold_ms, from_flags.pool_check) == (90, 200, False)

    files = {"tables.toml": "[run]\n" + TABLE + "\n[budget]\nworkers = 9\n", "flat.toml": TABLE,
             "pyproject.toml": "[project]\nname = 'app'\n\n[tool.poolcheck.run]\n" + TABLE}
    (tmp_path / "files").mkdir()  # not the current folder, where pyproject.toml would be read by itself
    for name, text in files.items():
        (tmp_path / "files" / name).write_text(text)
        assert _run_config("--config", f"files/{name}") == from_flags, name
    assert _run_config() == RunConfig()

    for name, value in ENV.items():
        monkeypatch.setenv(f"POOLCHECK_RUN_{name}", value)
    assert _run_config() == from_flags


def test_flags_override_the_environment_which_overrides_the_file(tmp_path, monkeypatch):
    (tmp_path / "poolcheck.toml").write_text("[run]\nworkers = 2\nmax-size = 4\nhosts = 2\n")
    monkeypatch.setenv("POOLCHECK_RUN_MAX_SIZE", "5")
    config = _run_config("--workers", "3")  # poolcheck.toml in the current folder is read without --config
    assert (config.workers, config.max_size, config.hosts) == (3, 5, 2)
    assert "max_size" in config.model_fields_set and "hosts" in config.model_fields_set


def test_poolcheck_dsn_still_sets_the_server_of_run_and_budget(monkeypatch):
    monkeypatch.setenv("POOLCHECK_DSN", "postgresql://u@127.0.0.1:1/x")
    assert _params("run")["dsn"] == _params("budget", "--workers", "1")["dsn"] == "postgresql://u@127.0.0.1:1/x"


def test_sweep_and_budget_tables(tmp_path):
    (tmp_path / "poolcheck.toml").write_text(
        "[sweep]\nrepeat = 3\nworkers = [1, 2]\nduration = \"15s\"\nburst-users = 10\n"
        "[budget]\nworkers = 4\nmax-size = 8\nmax-connections = 100\nsuperuser-reserved-connections = 5\n"
    )
    sweep = _params("sweep")
    assert (sweep["repeat"], sweep["workers"], sweep["duration"], sweep["burst_users"]) == (3, "1,2", 15.0, 10)
    budget = _params("budget")
    assert (budget["workers"], budget["max_size"], budget["superuser_reserved_connections"]) == (4, 8, 5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[sweep]\nrepat = 3\n", "[sweep]: unknown setting 'repat' for poolcheck sweep"),
        ("[sweep]\ntarget-url = 'http://x'\n", "[sweep]: unknown setting 'target-url'"),  # a sweep refuses it
        ("[swep]\nrepeat = 3\n[run]\n", "unknown table or key 'swep'"),
        ("stray = 1\n[run]\nworkers = 2\n", "unknown table or key 'stray'"),
        ("repeat = [", "not valid TOML"),
    ],
)
def test_a_bad_file_is_one_line_naming_the_table_and_the_key(tmp_path, capsys, text, expected):
    (tmp_path / "p.toml").write_text(text)
    assert expected in _refusal(capsys, "sweep", "--config", "p.toml")


def test_a_bad_value_in_a_file_gets_the_flags_message_and_names_the_table(tmp_path, capsys):
    (tmp_path / "p.toml").write_text("[sweep]\nrepeat = 30\n[run]\nduration = 'soon'\n")
    flag = _refusal(capsys, "sweep", "--repeat", "30").removeprefix("poolcheck: error: ")
    assert _refusal(capsys, "sweep", "--config", "p.toml") == f"poolcheck: error: --config p.toml [sweep]: {flag}"
    flag = _refusal(capsys, "run", "--duration", "soon").removeprefix("poolcheck: error: ")
    assert _refusal(capsys, "run", "--config", "p.toml") == f"poolcheck: error: --config p.toml [run]: {flag}"
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert "no [tool.poolcheck] table" in _refusal(capsys, "run", "--config", "pyproject.toml")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("2m", 120), ("1h", 3600), ("500ms", 0.5), ("45", 45), ("1.5", 1.5), (" 3 s ", 3)],
)
def test_durations_take_units_and_bare_numbers_are_seconds(text, seconds):
    assert parse_duration(text) == seconds


def test_duration_options_take_units_and_refuse_nonsense_in_one_line(capsys):
    config = _run_config("--duration", "2m", "--burst-seconds", "8s", "--quiet-seconds", "12", "--hold-ms", "0.25s",
                         "--sample-interval", "100ms", "--max-lifetime", "1h")
    assert (config.duration, config.burst_seconds, config.quiet_seconds, config.hold_ms) == (120, 8, 12, 250)
    assert (config.sample_interval, config.max_lifetime) == (0.1, 3600)
    assert _params("sweep", "--duration", "1m")["duration"] == 60
    line = _refusal(capsys, "run", "--duration", "5 minutes")
    assert "--duration" in line and "90s" in line


def test_verbose_after_the_subcommand(capsys):
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        for argv in (["budget", "--workers", "2", "--max-size", "4", "--max-connections", "40", "-v"],
                     ["-v", "budget", "--workers", "2", "--max-size", "4", "--max-connections", "40"]):
            root.setLevel(logging.WARNING)
            with pytest.raises(SystemExit) as exit_:
                main(argv)
            assert exit_.value.code == 0
            assert root.level == logging.INFO, argv
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers


# -- one name per setting, each command offering what it takes -------------------------

_OWN_OPTIONS = {  # options that are not a RunConfig setting, per command
    "run": {"config_file", "verbose", "json"},
    "sweep": {"config_file", "verbose", "json", "repeat", "headroom", "slo_p95_ms", "search"},
    "budget": {"config_file", "verbose", "json", "surge_hosts"},
    "compare": {"verbose", "json", "out"},
    "summarize": {"verbose"}, "report": {"verbose"}, "scenario": {"verbose"}, "init": {"verbose", "force"},
}


def _help(capsys, command: str) -> str:
    main([command, "--help"])
    return capsys.readouterr().out


def _visible_options(command: click.Command) -> list[click.Option]:
    return [p for p in command.params if isinstance(p, click.Option) and not p.hidden]


def test_one_name_per_setting_in_every_command():
    seen: dict[str, str] = {}
    assert set(cli.commands) == set(_OWN_OPTIONS)
    for name, command in cli.commands.items():
        for option in _visible_options(command):
            long_name = next(opt for opt in option.opts if opt.startswith("--"))
            if option.name in RunConfig.model_fields:
                assert long_name == _option((option.name,)), (name, long_name, option.name)
            else:
                assert option.name in _OWN_OPTIONS[name], f"poolcheck {name} {long_name}: not a RunConfig setting"
            assert seen.setdefault(long_name, str(option.name)) == option.name, (name, long_name)


def test_every_option_is_in_a_group_and_help_shows_them(capsys):
    from loadtests.options.groups import GENERAL, ORDER

    for name, command in cli.commands.items():
        for option in _visible_options(command):
            assert option.panel in ORDER, (name, option.name)
            assert option.panel != GENERAL or option.name in {"config_file", "verbose"}, (name, option.name)
    help_text = _help(capsys, "run")
    for title in ("Deployment", "Pool settings", "Server", "Load", "Thresholds", "Reports"):
        assert f" {title} " in help_text


def test_sweep_offers_only_what_it_takes_and_budget_keeps_its_old_names(capsys):
    sweep = {opt for p in cli.commands["sweep"].params if not p.hidden for opt in p.opts}
    assert not sweep & {"--dsn", "--target-url", "--allow-faults", "--web-ui", "--web-port", "--server-log"}
    assert {"--repeat", "--burst-users", "--fault", "--max-failure-ratio"} <= sweep
    old = _params("budget", "--workers", "1", "--superuser-reserved", "5", "--reserved", "2")
    assert (old["superuser_reserved_connections"], old["reserved_connections"]) == (5, 2)
    help_text = _help(capsys, "budget")
    assert "--superuser-reserved-connections" in help_text and not re.search(r"--superuser-reserved\b(?!-)", help_text)


def test_defaults_shown_are_run_configs():
    for name in ("budget", "sweep"):
        command = cli.commands[name]
        ctx = click.Context(command, info_name=name)
        for option in _visible_options(command):
            # Not: a sweep's axes and its --duration (its own, shorter), budget's required --max-connections.
            if option.name in RunConfig.model_fields and option.name not in {
                    "workers", "max_size", "pool_kind", "duration", "max_connections"}:
                default = RunConfig.model_fields[option.name].get_default(call_default_factory=True)
                record = option.get_help_record(ctx)
                if isinstance(default, (int, float)) and not isinstance(default, bool) and option.name != "max_overflow":
                    assert record and f"default: {default:g}" in record[1], (name, option.name, record)


# -- poolcheck init ---------------------------------------------------------------------

def test_init_writes_a_starter_file_that_every_command_loads(tmp_path, capsys):
    main(["init"])
    starter = tmp_path / "poolcheck.toml"
    data = tomllib.loads(starter.read_text())
    assert set(data) == {"run", "sweep", "budget"}
    assert "already" in _refusal(capsys, "init") and "--force" in _refusal(capsys, "init")
    main(["init", "--force"])
    capsys.readouterr()

    with pytest.raises(SystemExit) as exit_:
        main(["budget", "--config", str(starter), "--json"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    document = json.loads(out)
    jsonschema.validate(document, json.loads((ROOT / "loadtests/options/schemas/budget.schema.json").read_text()))
    assert (document["budget"]["hosts"], document["budget"]["workers"], document["server"]["max_connections"]) == (
        data["budget"]["hosts"], data["budget"]["workers"], data["budget"]["max-connections"])

    assert _run_config() == RunConfig(workers=2, max_size=4, duration=30)  # ./poolcheck.toml, found by itself
    assert _params("sweep")["workers"] == data["sweep"]["workers"]
    # Every commented default is a valid setting with the value it already has.
    uncommented = re.sub(r'^# ([\w-]+ = (?!"")[^\n]*?)(  # .*)?$', r"\1", starter.read_text(), flags=re.M)
    starter.write_text(uncommented)
    assert len(tomllib.loads(uncommented)["run"]) > 30
    assert _run_config() == RunConfig(workers=2, max_size=4, duration=30)
    _params("sweep")
    _params("budget")


def test_budget_json_is_the_figures_it_prints(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["budget", "--workers", "4", "--max-size", "10", "--max-connections", "40", "--json"])
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    jsonschema.validate(document, json.loads((ROOT / "loadtests/options/schemas/budget.schema.json").read_text()))
    assert exit_.value.code == 1 and document["fits"] is False
    assert document["budget"]["total"] == 40 and document["server"]["usable"] == 37 and document["headroom"] == -3
    assert document["explanation"] in captured.err
