"""manifest.json, written as the run goes: settings, versions, host, and every child's pid.

It is rewritten after each change, so that a runner killed at any moment
leaves the pids and start times its successor needs to stop what is left.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from loadtests.budget import ServerLimits
from loadtests.config import RunConfig
from loadtests.redact import Redactor
from loadtests.run.app_hosts import APP_NAME
from loadtests.run.processes import ManagedProcess, start_time
from loadtests.run_folder import MANIFEST, SCHEMA_VERSION, host_info, now_iso, versions, write_json
from loadtests.shapes import phases


class Manifest:
    """The run's manifest; `data` is what manifest.json holds, with secrets masked when written."""

    def __init__(self, run_dir: Path, *, config: RunConfig, limits: ServerLimits, redact: Redactor) -> None:
        self.path = run_dir / MANIFEST
        self.redact = redact
        self.data: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_dir.name,
            "status": "running",
            "started_at": now_iso(),
            "ended_at": None,
            "argv": [redact(a) for a in sys.argv],
            # No prefix for an app of your own: every watched connection is the app's.
            "app_name": "" if config.target_url else APP_NAME,
            "config": _described(config),
            # Each pool of one worker with what is known of it; None where nobody declared a setting.
            "pools": [pool.as_dict() for pool in config.declared_pools],
            # Settings given on the command line or in --config; the rest are defaults nobody declared.
            "declared": sorted(config.model_fields_set),
            "budget": config.budget.as_dict(),
            "server": {**limits.as_dict(), "embedded": config.embedded},
            "shape": phases(config.stages()),
            "versions": versions(),
            "host": host_info(),
            "pids": {},
            "process_starts": {},
            "runner": {"pid": os.getpid(), "started": start_time(os.getpid())},
        }
        self.write()

    def track(self, role: str, process: ManagedProcess) -> None:
        """Record a child's pid and start time at once: a killed runner's successor needs them."""
        self.data["pids"].setdefault(role, []).append(process.pid)
        self.data["process_starts"][str(process.pid)] = process.started_at
        self.write()

    def update(self, **fields: Any) -> None:
        self.data.update(fields)
        self.write()

    def write(self) -> None:
        write_json(self.path, json.loads(self.redact(json.dumps(self.data))))


# The sample app's pool settings: for an app of your own, known only when declared.
_SAMPLE_POOL_SETTINGS = ("pool_kind", "min_size", "max_size", "max_idle", "max_lifetime")


def _described(config: RunConfig) -> dict[str, Any]:
    """The settings as stored; an app of your own's pool settings nobody declared are None, not the sample's."""
    data = config.public()
    if config.target_url is not None:
        for name in _SAMPLE_POOL_SETTINGS:
            if name not in config.model_fields_set:
                data[name] = None
    return data
