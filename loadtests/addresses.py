"""What an address option may be: the Locust master's bind, an app's base URL, a locustfile."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from pathlib import Path

LOOPBACK = "127.0.0.1"
_ANY_ADDRESS = ("0.0.0.0", "::", "*")


@dataclass(frozen=True)
class MasterBind:
    """Where the Locust master listens for its workers."""

    host: str
    port: int

    @property
    def local_host(self) -> str:
        """The address local workers dial: a master on every address is reachable on loopback."""
        return LOOPBACK if self.host in _ANY_ADDRESS else self.host

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_bind(text: str) -> MasterBind:
    """`HOST:PORT` (or `[IPv6]:PORT`) into a MasterBind; ValueError says what is wrong."""
    host, sep, port = text.strip().rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host:
        raise ValueError("expected HOST:PORT, e.g. 0.0.0.0:5557")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port!r}")
    return MasterBind(host, int(port))


def check_target_url(url: str) -> str:
    """The base URL without a trailing slash; ValueError says what is wrong."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected an http:// or https:// URL")
    if not parts.hostname:
        raise ValueError("the URL names no host")
    if parts.query or parts.fragment:
        raise ValueError("give the app's base URL, without a query or fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("the URL's port is not a number from 1 to 65535") from None
    return url.strip().rstrip("/")


def check_locustfile(path: Path) -> Path:
    if not path.is_file():
        raise ValueError("no such file")
    if path.suffix != ".py":
        raise ValueError("expected a Python file (.py)")
    return path.resolve()


# PgBouncer's own defaults (pgbouncer.ini): default_pool_size, reserve_pool_size, max_client_conn
