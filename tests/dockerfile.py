"""The Dockerfile read offline (no Docker engine here): its stages and their instructions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

ROOT_USERS = {"root", "0"}


@dataclass
class Stage:
    name: str
    base: str
    # (INSTRUCTION, its arguments), continuation lines joined, in file order.
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def arguments(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def position(self, instruction: str, predicate) -> int:
        """Index of the first `instruction` whose arguments satisfy `predicate`; -1 if none."""
        for i, (name, args) in enumerate(self.instructions):
            if name == instruction and predicate(args):
                return i
        return -1

    def user(self, stages: dict[str, Stage]) -> str:
        """The user the stage's image runs as: its last USER, else its base stage's, else root."""
        users = self.arguments("USER")
        if users:
            return users[-1]
        return stages[self.base].user(stages) if self.base in stages else "root"


def logical_lines(text: str) -> list[str]:
    lines, current = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def read_stages(path: Path) -> dict[str, Stage]:
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for line in logical_lines(path.read_text()):
        instruction, _, arguments = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            words = arguments.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else str(len(stages))
            stage = stages[name] = Stage(name=name, base=words[0])
        elif stage is not None:
            stage.instructions.append((instruction, arguments.strip()))
    return stages


def is_root(user: str) -> bool:
    return user.split(":")[0] in ROOT_USERS
