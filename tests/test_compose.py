"""compose.yaml, checked offline (no Docker engine here): schema, files, commands, variables, budget."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.metrics import MULTIPROC_ENV
from conftest import require
from app.settings import Settings
from loadtests.budget import Budget, ServerLimits, explain, fits
from loadtests.cli import run as run_command
from loadtests.config import COLLECTOR_CLIENTS, RunConfig

from dockerfile import is_root, read_stages

# Its tests share a module-scoped run: one test process runs them all (make test uses xdist).
pytestmark = pytest.mark.xdist_group("test_compose")

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
# The Compose Specification's JSON schema, kept in a folder beside the project, or wherever
# COMPOSE_SPEC_SCHEMA names (a clone or a worktree elsewhere).
SCHEMA = Path(os.environ.get("COMPOSE_SPEC_SCHEMA", ROOT.parent / "shared" / "compose-spec" / "compose-spec.json"))
POSTGRES_IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}

_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<default>[^}]*))?\}")
_SHELL_VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")
_ENVIRON_READ = re.compile(r"environ(?:\.get)?[(\[]\s*\"(\w+)\"")


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def interpolate(text: str, values: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `$$`, as `docker compose` expands them."""

    def expand(match: re.Match[str]) -> str:
        value = values.get(match["name"])
        if value is None and match["op"] and match["op"].endswith("-"):
            return match["default"]
        if value is None:
            raise KeyError(f"compose.yaml uses ${{{match['name']}}} without a default or a value")
        return value

    return _VARIABLE.sub(expand, text.replace("$$", "\0")).replace("\0", "$")


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(ENV_EXAMPLE)


@pytest.fixture(scope="module")
def compose(env_example: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(interpolate(COMPOSE.read_text(), env_example))


def project_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services whose image is built from this project's Dockerfile."""
    return {name: s for name, s in compose["services"].items() if "build" in s}


def option(argv: list[str], name: str) -> str:
    """The value of `--name=VALUE` or `--name VALUE` in a command."""
    for i, arg in enumerate(argv):
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
        if arg == name:
            return argv[i + 1]
    raise AssertionError(f"{name} not in {argv}")


def postgres_settings(compose: dict[str, Any]) -> dict[str, str]:
    argv = compose["services"]["postgres"]["command"]
    return dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-c")


def test_compose_validates_against_the_compose_specification(compose):
    require(SCHEMA.is_file(), f"the Compose Specification schema is not at {SCHEMA} (set COMPOSE_SPEC_SCHEMA)")
    import jsonschema

    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in jsonschema.Draft7Validator(schema).iter_errors(compose)]
    assert errors == []


def test_every_variable_is_documented_with_the_same_default(env_example):
    uses = [(m["name"], m["default"]) for m in _VARIABLE.finditer(COMPOSE.read_text())]
    assert {name for name, _ in uses} == set(env_example), "compose.yaml and .env.example name different variables"
    # Without a .env, `docker compose up` runs exactly what .env.example documents.
    assert [(name, default) for name, default in uses if default != env_example[name]] == []


def test_files_it_names_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            build = service["build"]
            dockerfile = ROOT / build["context"] / build.get("dockerfile", "Dockerfile")
            assert dockerfile.is_file(), name
            assert build["target"] in read_stages(dockerfile), f"{name}: no stage {build['target']}"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source}"
    for stage in read_stages(ROOT / "Dockerfile").values():
        for copy in stage.arguments("COPY"):
            for source in copy.split()[:-1]:
                assert (ROOT / source).exists(), f"{stage.name}: COPY {copy}"


def test_commands_are_the_projects_own(compose, monkeypatch):
    scripts = {entry.name for entry in importlib.metadata.entry_points(group="console_scripts")}
    for name, service in project_services(compose).items():
        argv = service["command"]
        assert argv[0] in scripts and argv[0] in {"gunicorn", "locust", "poolcheck"}, name
        for arg in argv:
            if arg.endswith(".py"):
                assert (ROOT / arg).is_file(), f"{name}: {arg}"
    app_command = compose["services"]["app"]["command"]
    assert (ROOT / option(app_command, "-c")).is_file()
    module, _, factory = app_command[-1].partition(":")
    assert callable(getattr(importlib.import_module(module), factory.removesuffix("()")))
    # The collector's command is a valid `poolcheck run`, its DSN taken from the environment.
    collector = compose["services"]["collector"]
    monkeypatch.setenv("POOLCHECK_DSN", collector["environment"]["POOLCHECK_DSN"])
    params = run_command.make_context("run", collector["command"][2:]).params
    config = RunConfig(**{k: v for k, v in params.items() if v not in (None, (), {}) and k in RunConfig.model_fields})
    assert config.target_url == "http://app:8000" and config.dsn is not None
    healthcheck = compose["services"]["app"]["healthcheck"]["test"]
    compile(healthcheck[healthcheck.index("-c") + 1], "healthcheck", "exec")


def test_environment_names_are_ones_the_app_and_harness_read(compose):
    conf = (ROOT / "app" / "gunicorn.conf.py").read_text()
    app_reads = set(Settings.model_fields) | set(_ENVIRON_READ.findall(conf)) | {MULTIPROC_ENV}
    harness_reads = {p.envvar for p in run_command.params if isinstance(getattr(p, "envvar", None), str)}
    init_scripts = (ROOT / "docker" / "postgres-init").glob("*.sh")
    postgres_reads = POSTGRES_IMAGE_VARIABLES | {v for f in init_scripts for v in _SHELL_VARIABLE.findall(f.read_text())}
    services = compose["services"]
    assert set(services["app"]["environment"]) <= app_reads
    assert set(services["collector"]["environment"]) <= harness_reads
    assert set(services["postgres"]["environment"]) <= postgres_reads
    assert "environment" not in services["locust-worker"]


def test_default_budget_fits_its_own_max_connections(compose):
    services = compose["services"]
    app_env, harness = services["app"]["environment"], services["collector"]["command"]
    budget = Budget(
        hosts=int(services["app"]["deploy"]["replicas"]),
        workers=int(app_env["WORKERS"]),
        max_size=int(app_env["POOL_MAX_SIZE"]),
        extra_clients=COLLECTOR_CLIENTS,
    )
    settings = postgres_settings(compose)
    limits = ServerLimits(
        max_connections=int(settings["max_connections"]),
        superuser_reserved_connections=int(settings["superuser_reserved_connections"]),
        reserved_connections=int(settings["reserved_connections"]),
    )
    assert fits(budget, limits), explain(budget, limits)
    # The collector budgets exactly the deployment compose starts.
    assert (int(option(harness, "--hosts")), int(option(harness, "--workers")), int(option(harness, "--max-size"))) == (
        budget.hosts, budget.workers, budget.max_size,
    )


def test_locust_workers_join_the_master_the_collector_runs(compose):
    services = compose["services"]
    harness, worker = services["collector"]["command"], services["locust-worker"]["command"]
    master_names = {"collector", *services["collector"]["networks"]["default"]["aliases"]}
    assert option(worker, "--master-host") in master_names
    assert option(harness, "--locust-master-bind").endswith(":" + option(worker, "--master-port"))
    assert int(option(harness, "--locust-remote-workers")) == int(services["locust-worker"]["deploy"]["replicas"])
    assert services["app"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["collector"]["depends_on"]["app"]["condition"] == "service_healthy"


def test_every_service_runs_as_a_user_other_than_root(compose):
    stages = read_stages(ROOT / "Dockerfile")
    for name, service in compose["services"].items():
        if "user" in service:
            user = service["user"]
        elif "build" in service:
            user = stages[service["build"]["target"]].user(stages)
        else:
            user = "root"  # an image's own USER is unknown offline: the service must set one
        assert not is_root(str(user)), f"{name} runs as {user}"
