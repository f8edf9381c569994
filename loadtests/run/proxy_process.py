"""The cloud-proxy emulator as a child of a run: `python -m loadtests.proxy` between app and server.

Ready once its first event names the port it listens on (a probe connection
would be relayed to the server and counted); `app_dsn_through` points a DSN
at it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from psycopg.conninfo import conninfo_to_dict, make_conninfo

from loadtests.errors import ProcessError
from loadtests.proxy.events import listening_port
from loadtests.run.processes import ManagedProcess
from loadtests.run.signals import Stop
from loadtests.run_folder import PROXY_EVENTS_JSONL, PROXY_LOG


def proxy_process(
    *,
    run_dir: Path,
    upstream: tuple[str, int],
    idle_cut: float,
    mode: str,
    max_seconds: float,
    client_timeout: float | None = None,
    listen_port: int = 0,
    stop: Stop | None = None,
) -> ManagedProcess:
    """A ManagedProcess (not started) for the relay; its port is `relay_port(run_dir)` once ready."""
    events = run_dir / PROXY_EVENTS_JSONL
    argv = [
        sys.executable, "-m", "loadtests.proxy",
        "--out", str(run_dir),
        "--upstream", f"{upstream[0]}:{upstream[1]}",
        "--idle-cut", str(idle_cut),
        "--mode", mode,
        "--listen-port", str(listen_port),
        # It stops by itself after this, whatever happens to the runner.
        "--max-seconds", str(max_seconds),
    ]
    if client_timeout is not None:
        argv += ["--client-timeout", str(client_timeout)]
    return ManagedProcess(
        "proxy",
        argv,
        log_path=run_dir / PROXY_LOG,
        ready=lambda: listening_port(events) is not None,
        ready_timeout=15,
        stop_timeout=3,
        cancelled=stop,
        forced=stop.forced if stop is not None else None,
    )


def relay_port(run_dir: Path) -> int:
    port = listening_port(run_dir / PROXY_EVENTS_JSONL)
    if port is None:
        raise ProcessError(f"proxy: it has not said which port it listens on; see {run_dir / PROXY_LOG}")
    return port


def upstream_of(dsn: str) -> tuple[str, int]:
    """The host and port a DSN connects to (the relay's upstream)."""
    params = conninfo_to_dict(dsn)
    host, port = str(params.get("host") or "127.0.0.1"), str(params.get("port") or 5432)
    if "," in host + port:
        raise ValueError("the proxy relays to one server; the DSN names several hosts")
    return host, int(port)


def app_dsn_through(dsn: str, port: int) -> str:
    """The same DSN, connecting to the relay on 127.0.0.1:`port` instead.

    A URL stays a URL: asyncpg (`--pool-kind asyncpg`) reads no other form.
    """
    url = urlsplit(dsn)
    if url.scheme in ("postgres", "postgresql"):
        credentials = url.netloc.rpartition("@")[0]
        netloc = f"{credentials}@127.0.0.1:{port}" if credentials else f"127.0.0.1:{port}"
        return urlunsplit(url._replace(netloc=netloc))
    return make_conninfo(dsn, host="127.0.0.1", port=str(port))
