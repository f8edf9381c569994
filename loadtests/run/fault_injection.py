"""What `--fault` does to a running stack: signal an app worker, or end the app's idle backends.

(A server restart is the embedded server's own `restart()`.)
"""

from __future__ import annotations

import os
import signal

import psutil
import psycopg

def kill_one_worker(master_pid: int, *, signum: int = signal.SIGKILL) -> int:
    """Signal (SIGKILL by default) the youngest worker of a gunicorn master or uvicorn supervisor; it starts a new one."""
    workers = [child for child in psutil.Process(master_pid).children() if not _is_resource_tracker(child)]
    if not workers:
        raise RuntimeError(f"app server {master_pid} has no workers to kill")
    # create_time() ticks in hundredths of a second: workers started together tie, and the pid breaks the tie.
    victim = max(workers, key=lambda p: (p.create_time(), p.pid))
    os.kill(victim.pid, signum)
    return victim.pid


def _is_resource_tracker(process: psutil.Process) -> bool:
    """uvicorn's supervisor spawns its workers with multiprocessing, whose resource tracker is a child too."""
    try:
        return "multiprocessing.resource_tracker" in " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return True  # gone already, or not ours to judge: never the victim


def terminate_idle(superuser_dsn: str, *, app_prefix: str) -> int:
    """pg_terminate_backend() on every idle backend of the app; return how many."""
    with psycopg.connect(superuser_dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE backend_type = 'client backend' AND state = 'idle' AND application_name LIKE %s",
            (app_prefix + "%",),
        ).fetchall()
    return sum(1 for (done,) in rows if done)
