"""The README's commands run as written after the set-up it describes: real subcommands,
options, make targets, scripts and files."""

from __future__ import annotations

import re
import shlex
from importlib import metadata
from pathlib import Path

import click

from loadtests.cli import cli

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ACTIVATE = "source .venv/bin/activate"
_REPO_PATH = re.compile(r"^(app|loadtests|tests|benchmarks|docker)/[\w/.-]+$")


def code_blocks(text: str) -> list[list[str]]:
    return [block.splitlines() for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)]


def commands(block: list[str]) -> list[str]:
    """The command lines of a block: `$ ` lines when it shows output too, continuations joined."""
    if any("─" in line for line in block):
        return []  # a diagram
    prompted = any(line.startswith("$ ") for line in block)
    found, current = [], ""
    for line in block:
        if current:
            current += " " + line.strip()
        elif prompted and not line.startswith("$ "):
            continue
        else:
            current = line.removeprefix("$ ").strip()
        if current.endswith("\\"):
            current = current[:-1].strip()
            continue
        command = re.sub(r"\s+#.*$", "", current)
        if command and not command.startswith("#"):
            found.append(command)
        current = ""
    return found


def readme_commands() -> list[str]:
    return [command for block in code_blocks(README.read_text()) for command in commands(block)]


def option_names(command: click.Command) -> set[str]:
    return {name for param in command.params for name in getattr(param, "opts", []) + getattr(param, "secondary_opts", [])} | {"--help", "-h"}


def check_poolcheck(words: list[str]) -> None:
    """A `poolcheck ...` command names a real subcommand and only that subcommand's options."""
    if words[1].startswith("-"):
        assert words[1] in option_names(cli), words
        return
    assert words[1] in cli.commands, f"no subcommand {words[1]}: {' '.join(words)}"
    known = option_names(cli.commands[words[1]])
    for word in words[2:]:
        word = word.strip("[]")
        if word.startswith("--"):
            assert word.split("=")[0] in known, f"{word.split('=')[0]} is not an option of poolcheck {words[1]}"


def test_every_poolcheck_command_names_real_subcommands_and_options():
    checked = 0
    for command in readme_commands():
        words = shlex.split(command)
        if words[0] in {"poolcheck", ".venv/bin/poolcheck"}:
            check_poolcheck(words)
            checked += 1
    assert checked >= 10
    # And in the prose: `poolcheck SUBCOMMAND ...`.
    for subcommand in re.findall(r"`poolcheck ([a-z-]+)", README.read_text()):
        assert subcommand in cli.commands, subcommand


def test_scripts_files_and_make_targets_exist():
    scripts = {entry.name for entry in metadata.entry_points(group="console_scripts")}
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for command in readme_commands():
        words = shlex.split(command)
        if words[0].startswith(".venv/bin/"):
            assert words[0].removeprefix(".venv/bin/") in scripts, command
        if words[0] == "make":
            assert words[1] in targets, command
        for word in words:
            for path in word.split(","):
                if _REPO_PATH.match(path):
                    assert (ROOT / path).exists(), f"{path} in: {command}"


def test_bare_poolcheck_commands_come_after_the_venv_is_activated():
    text = README.read_text()
    first_bare = min(
        block.start(1) + block[1].index(command.split()[0] + " " + command.split()[1])
        for block in re.finditer(r"^```[a-z]*\n(.*?)^```", text, re.S | re.M)
        for command in commands(block[1].splitlines())
        if command.startswith("poolcheck ")
    )
    assert ACTIVATE in text[:first_bare]
