"""Whose connection is it? Each server backend attributed to the client that holds it.

An app the harness did not start may not set `application_name`, and may run
several pools per worker. A backend is then attributed, in order:

1. by `application_name`, when the client set one;
2. by client address and port: when that endpoint belongs to a process on this
   machine (the kernel's socket table), to that process, `pid:<pid>`; else to
   the client host, `addr:<address>`;
3. by user and database (a Unix-socket client has no address): `user:<user>@<db>`.

A local process that holds connections but does not serve the app (it does
not listen on the app's port: a cron job, a migration, a shell) is another
client, `other:pid:<pid>`: counted, never taken for one of the app's workers.

`--watch-filter` keeps other clients of a shared server out of the count; it
takes names and values, never SQL.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields

import psutil

logger = logging.getLogger("poolcheck.attribution")

Endpoint = tuple[str, int]

WATCH_FILTER_NAMES = ("database", "user", "application_name")
OTHER_PREFIX = "other:"  # a local process that holds connections but does not serve the app


def is_app_client(client: str, app_prefix: str) -> bool:
    """Whether a client key names one of the app's workers (not the harness, not another client)."""
    return client.startswith(app_prefix) and not client.startswith(OTHER_PREFIX)


@dataclass(frozen=True)
class Backend:
    """One client backend as the collector reads it from pg_stat_activity."""

    state: str
    application_name: str
    client_addr: str | None
    client_port: int | None
    user: str
    database: str
    backend_age_s: float
    idle_age_s: float | None
    pid: int = 0
    backend_start: float = 0.0  # epoch seconds

    @property
    def session_id(self) -> str:
        """The server log's `session_id` of this backend: its start second and pid, in hex."""
        return f"{int(self.backend_start):x}.{self.pid:x}"

    @property
    def endpoint(self) -> Endpoint | None:
        """The client's TCP address and port; None for a Unix-socket client (port -1)."""
        if self.client_addr is None or self.client_port is None or self.client_port < 0:
            return None
        return (_plain_address(self.client_addr), self.client_port)


@dataclass(frozen=True)
class WatchFilter:
    """Which backends count: all given fields must match; `application_name` is a prefix."""

    database: str | None = None
    user: str | None = None
    application_name: str | None = None

    def matches(self, backend: Backend) -> bool:
        return (
            (self.database is None or backend.database == self.database)
            and (self.user is None or backend.user == self.user)
            and (self.application_name is None or backend.application_name.startswith(self.application_name))
        )

    def as_specs(self) -> list[str]:
        """`NAME=VALUE` for each field set: the form the options take."""
        return [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if getattr(self, f.name) is not None]


def parse_watch_filter(specs: Iterable[str] | Mapping[str, str]) -> WatchFilter:
    """`["database=shop", "user=app"]` (or a mapping) into a WatchFilter; ValueError says what is wrong."""
    pairs = specs.items() if isinstance(specs, Mapping) else (_split(spec) for spec in specs)
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in WATCH_FILTER_NAMES:
            raise ValueError(f"unknown filter {name!r}; known: {', '.join(WATCH_FILTER_NAMES)}")
        if not value:
            raise ValueError(f"filter {name!r} needs a value")
        values[name] = value
    return WatchFilter(**values)


def _split(spec: str) -> tuple[str, str]:
    name, sep, value = spec.partition("=")
    if not sep:
        raise ValueError(f"expected NAME=VALUE, got {spec!r}")
    return name.strip(), value.strip()


def client_key(
    backend: Backend, owners: Mapping[Endpoint, int | None], *, app_servers: set[int] | None = None
) -> str:
    """The client a backend belongs to, by the first rule that applies (see the module doc).

    `app_servers`: the pids that serve the app (listen on its port); None when
    that cannot be known, and every owning process is then taken for the app's.
    """
    if backend.application_name:
        return backend.application_name
    endpoint = backend.endpoint
    if endpoint is not None:
        owner = owners.get(endpoint)
        if owner is None:
            return f"addr:{endpoint[0]}"
        other = app_servers is not None and owner not in app_servers
        return f"{OTHER_PREFIX if other else ''}pid:{owner}"
    return f"user:{backend.user}@{backend.database}"


def listening_pids(port: int) -> set[int]:
    """The processes listening on `port` on this machine: a gunicorn master and every worker it forked.

    The kernel's table names one holder of a shared listening socket; its
    parent and the children of both are asked one by one which hold it too.
    """
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.Error as exc:
        logger.warning("cannot read the socket table: %s", exc)
        return set()
    found = {c.pid for c in connections if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port and c.pid}
    candidates = set(found)
    for pid in found:
        try:
            process = psutil.Process(pid)
            family = [process, *process.children()]
            parent = process.parent()
            if parent is not None:
                family += [parent, *parent.children()]
        except psutil.Error:
            continue
        candidates |= {member.pid for member in family if _listens(member, port)}
    return candidates


def _listens(process: psutil.Process, port: int) -> bool:
    try:
        return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
                   for c in process.net_connections(kind="inet"))
    except psutil.Error:
        return False


def unnamed_endpoints(backends: Iterable[Backend]) -> set[Endpoint]:
    """Endpoints whose owner is worth looking up: TCP clients without an application_name."""
    return {b.endpoint for b in backends if not b.application_name and b.endpoint is not None}


def socket_table(*, server_port: int | None = None) -> dict[Endpoint, int | None]:
    """Local TCP client endpoints connected to `server_port`, and the pid owning each.

    The kernel reuses an ephemeral port for connections to different
    destinations, so a local endpoint alone can name two sockets: only those
    whose remote end is the server's port are this server's clients.
    """
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.Error as exc:  # no permission to read other processes' sockets
        logger.warning("cannot read the socket table: %s", exc)
        return {}
    return {
        (_plain_address(c.laddr.ip), c.laddr.port): c.pid
        for c in connections
        if c.laddr and c.raddr and (server_port is None or c.raddr.port == server_port)
    }


def socket_table_through_relay(
    *, server_port: int, relay_port: int, relayed: Callable[[], Mapping[Endpoint, int]], attempts: int = 5,
) -> dict[Endpoint, int | None]:
    """`socket_table`, where a relay (the cloud-proxy emulator) stands between the app and the server.

    The server sees the relay's own sockets as its clients; `relayed()` pairs each
    of them with the client port it relays (loadtests/proxy/events.py: `linked`),
    and the process holding that client's socket to the relay owns the backend.
    The relay writes a pairing right after it connects, so a backend seen first
    may wait for it: the pairings are read again a few times, 20 ms apart.
    """
    to_server = socket_table(server_port=server_port)
    relay = listening_pids(relay_port)
    through = {endpoint for endpoint, pid in to_server.items() if pid in relay}
    if not through:
        return to_server
    to_relay = socket_table(server_port=relay_port)
    pairs = relayed()
    for _ in range(attempts - 1):
        if through <= pairs.keys():
            break
        time.sleep(0.02)  # a poll interval: the relay writes the pairing as it connects
        pairs = relayed()
    owners = {endpoint: pid for endpoint, pid in to_server.items() if endpoint not in through}
    for endpoint in through:
        client_port = pairs.get(endpoint)
        # The client reached the relay on loopback (the relay listens on 127.0.0.1 only).
        owners[endpoint] = to_relay.get(("127.0.0.1", client_port)) if client_port is not None else None
    return owners


class SocketOwners:
    """Owners of client endpoints, remembered while their backends live.

    The socket table is read only when an endpoint is new, not on every
    sample; an endpoint whose backend is gone is forgotten, so a port the
    kernel hands out again is looked up afresh.
    """

    def __init__(self, *, lookup: Callable[[], Mapping[Endpoint, int | None]] = socket_table) -> None:
        self.lookup = lookup
        self._known: dict[Endpoint, int | None] = {}
        self.lookups = 0

    def resolve(self, endpoints: set[Endpoint]) -> Mapping[Endpoint, int | None]:
        self._known = {e: pid for e, pid in self._known.items() if e in endpoints}
        new = endpoints - self._known.keys()
        if new:
            table = self.lookup()
            self.lookups += 1
            self._known.update({e: table.get(e) for e in new})
        return self._known


def _plain_address(address: str) -> str:
    """`::ffff:127.0.0.1` and `127.0.0.1` are the same client; keep the IPv4 form."""
    try:
        ip = ipaddress.ip_address(address.split("%")[0])
    except ValueError:
        return address
    mapped = getattr(ip, "ipv4_mapped", None)
    return str(mapped or ip)
