"""Everything that can refuse a run, checked before anything starts: nothing is left to clean up."""

from __future__ import annotations

import socket
from pathlib import Path

import psycopg

from loadtests import budget as budget_math
from loadtests.budget import ServerLimits
from loadtests.config import RunConfig
from loadtests.errors import Refused
from loadtests.redact import Redactor
from loadtests.run.proxy_process import upstream_of
from loadtests.sources.collector import read_server_settings
from loadtests.sources.server_log import STDERR, log_format, logs_sessions, messages_language_problem, stderr_problem


def read_server_limits(dsn: str) -> tuple[ServerLimits, dict[str, str]]:
    """An existing server's connection limits and settings: read-only, one short connection."""
    try:
        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            settings = read_server_settings(conn)
    except psycopg.Error as exc:
        raise Refused(f"--dsn: cannot connect: {Redactor()(str(exc).strip().splitlines()[0])}") from None
    limits = ServerLimits(
        max_connections=int(settings["max_connections"]),
        superuser_reserved_connections=int(settings.get("superuser_reserved_connections", 0)),
        reserved_connections=int(settings.get("reserved_connections", 0)),
    )
    return limits, settings


def preflight(config: RunConfig) -> ServerLimits:
    """The server's limits once every check has passed; Refused names the first that did not."""
    if config.dsn is not None:
        try:
            psycopg.conninfo.conninfo_to_dict(config.dsn)
        except psycopg.ProgrammingError:
            raise Refused("--dsn: not a valid connection string or URL") from None
        _check_proxy_upstream(config.dsn, config)
        limits, settings = read_server_limits(config.dsn)
        if config.server_log is not None:
            check_server_log(config.server_log, settings=settings, prefix=config.log_line_prefix)
    else:
        limits = config.embedded_limits()
    _check_writable(config.results_dir)
    _check_app_ports_free(config)
    _check_web_port_free(config)
    if config.pooler_budget is not None:
        _check_pooler(config, limits)
    elif not budget_math.fits(config.budget, limits) and not config.allow_overcommit:
        raise Refused(
            f"refused: {budget_math.explain(config.budget, limits)}; "
            "lower --max-size or --workers, or pass --allow-overcommit to see the failure"
        )
    return limits


def check_server_log(path: Path, *, settings: dict[str, str], prefix: str | None) -> None:
    """Refused when the server's log cannot give exact counts: that is what --server-log was given for.

    Refused rather than warned: the run would give the sampled figures alone,
    as it does without --server-log, and the fix is one server setting.
    """
    off = [name for name in ("log_connections", "log_disconnections") if not logs_sessions(settings, name)]
    if off:
        raise Refused(f"--server-log: the server has {' and '.join(off)} off, so its log cannot tell when sessions"
                      f" open and close; turn {' and '.join(off)} on, or leave out --server-log for sampled figures")
    language = messages_language_problem(settings)
    if language:
        raise Refused(f"--server-log: {language}, or leave out --server-log for sampled figures")
    if log_format(path) != STDERR or prefix is not None:
        return  # jsonlog and csvlog were checked with the options; a given prefix too
    server_prefix = settings.get("log_line_prefix")
    if server_prefix is None:
        raise Refused(f"--server-log {path}: a stderr log is read with its log_line_prefix, which --dsn did not show;"
                      " give it with --log-line-prefix")
    problem = stderr_problem(path, prefix=server_prefix)
    if problem:
        raise Refused(f"--server-log {path}: {problem}")


def _check_pooler(config: RunConfig, limits: ServerLimits) -> None:
    """Behind PgBouncer both levels must fit: the app's pools its max_client_conn, its server pools the server."""
    from loadtests.run.pgbouncer import require_binary

    require_binary()
    budget = config.pooler_budget
    assert budget is not None
    if config.allow_overcommit:
        return
    clients, server = budget_math.explain_pooler(budget, limits)
    if not budget.clients_fit():
        raise Refused(f"refused: {clients}; raise --pgbouncer-max-client-conn, or pass --allow-overcommit to see the failure")
    if not budget.server_fits(limits):
        raise Refused(f"refused: {server}; lower --pgbouncer-pool-size or --pgbouncer-reserve-pool-size,"
                      " or pass --allow-overcommit to see the failure")


def _check_proxy_upstream(dsn: str, config: RunConfig) -> None:
    """The emulator relays TCP to one server: a DSN of several hosts or a Unix socket cannot go through it."""
    if config.proxy_idle_cut is None:
        return
    try:
        host, _ = upstream_of(dsn)
    except ValueError as exc:
        raise Refused(f"--proxy-idle-cut: {exc}") from None
    if host.startswith("/") or host.startswith("@"):
        raise Refused("--proxy-idle-cut: the proxy relays TCP; the --dsn connects through a Unix socket")


def _check_app_ports_free(config: RunConfig) -> None:
    if not config.app_port:
        return
    for port in range(config.app_port, config.app_port + config.hosts):
        if _port_taken(port):
            raise Refused(f"--app-port: port {port} on 127.0.0.1 is in use")


def _check_web_port_free(config: RunConfig) -> None:
    if config.web_ui and _port_taken(config.web_port):
        raise Refused(f"--web-port: port {config.web_port} on 127.0.0.1 is in use")
    if config.proxy_listen_port and _port_taken(config.proxy_listen_port):
        raise Refused(f"--proxy-listen-port: port {config.proxy_listen_port} on 127.0.0.1 is in use")


def _port_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _check_writable(results_dir: Path) -> None:
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise Refused(f"--results-dir {results_dir}: not writable ({exc.strerror})") from None
