"""A silent drop on a real network path: the fixes the advice names, measured by the kernel's own TCP.

The cloud-proxy emulator cannot show TCP's timers, since on loopback its own
kernel acknowledges every byte (loadtests/proxy/relay.py). Here the client
runs on a host of its own, a network namespace joined to this one by a veth
pair, and the real embedded server listens on the pair's address too. Taking
the link down drops every packet both ways and tells neither side: a NAT
gateway forgetting the flow, a load balancer's silent idle cut, or a worker's
host that vanished. Then:

- the client's next query hangs (libpq's defaults wait for TCP's
  retransmissions, about 15 minutes), and its backend stays on the server;
- libpq's `tcp_user_timeout` ends the hang after that many milliseconds;
- libpq's `keepalives_*` find the idle connection dead before it is used, so
  the next query fails at once (a pool's check would then replace it);
- the server's `tcp_keepalives_*` end the backend of a client that vanished,
  the orphan of host-vanishes.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from conftest import require
from loadtests.run.embedded_server import ServerInfo, embedded_server
from loadtests.run.processes import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90), pytest.mark.xdist_group("test_silent_drop_host")]

CLIENT = Path(__file__).resolve().parent / "netns_client.py"
SUBNETS = "10.213.0.0/16"  # each test's pair takes a /24 of it
# Server-side keepalives, set per session as a client may (they are the server's own settings otherwise).
SERVER_KEEPALIVES = "-c tcp_keepalives_idle=1 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2"


def _ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", *(["netns", "exec", ns, "ip"] if ns else []), *args]
    subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    require(shutil.which("ip") is not None and os.geteuid() == 0, "ip (iproute2) as root, for network namespaces")
    # The server's user must read the hba file: a folder of its own, not pytest's private one.
    hba_dir = Path(tempfile.mkdtemp(prefix="poolcheck-hba-"))
    os.chmod(hba_dir, 0o755)
    hba = hba_dir / "pg_hba.conf"
    hba.write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
                   f"host all all {SUBNETS} scram-sha-256\n")
    os.chmod(hba, 0o644)
    try:
        with embedded_server(run_dir=tmp_path_factory.mktemp("silent-drop-server"),
                             settings={"listen_addresses": "*", "hba_file": str(hba)}) as info:
            yield info
    finally:
        shutil.rmtree(hba_dir, ignore_errors=True)


class Host:
    """A network namespace joined to this one by a veth pair; `cut()` drops every packet both ways, silently."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.ns, self.outer, self.inner = f"pc-{tag}", f"pch{tag}", f"pcn{tag}"
        subnet = 10 + secrets.randbelow(240)
        self.server_addr, self.addr = f"10.213.{subnet}.1", f"10.213.{subnet}.2"

    def __enter__(self) -> "Host":
        _ip("netns", "add", self.ns)
        try:
            _ip("link", "add", self.outer, "type", "veth", "peer", "name", self.inner)
            _ip("link", "set", self.inner, "netns", self.ns)
            _ip("addr", "add", f"{self.server_addr}/24", "dev", self.outer)
            _ip("link", "set", self.outer, "up")
            _ip("addr", "add", f"{self.addr}/24", "dev", self.inner, ns=self.ns)
            _ip("link", "set", self.inner, "up", ns=self.ns)
        except BaseException:
            self.__exit__()
            raise
        return self

    def cut(self) -> None:
        # The outer end down: the inner end loses its carrier; both drop what they are given, no error, no RST.
        _ip("link", "set", self.outer, "down")

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "link", "del", self.outer], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=10)


class Client:
    """tests/netns_client.py on the host: a real psycopg connection to the server's address on the pair."""

    def __init__(self, host: Host, server: ServerInfo, **conninfo: str) -> None:
        dsn = make_conninfo(server.app_dsn, host=host.server_addr, application_name=f"netns-{host.ns}", **conninfo)
        self.process = subprocess.Popen(
            ["ip", "netns", "exec", host.ns, sys.executable, str(CLIENT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "POOLCHECK_DSN": dsn},
        )
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.backend_pid = int(self.next(timeout=15)["ready"])

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(json.loads(line))

    def next(self, *, timeout: float) -> dict:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the client said nothing for {timeout} s") from None

    def query(self) -> float:
        """Send a query; the moment it was sent."""
        assert self.process.stdin is not None
        sent = time.monotonic()
        self.process.stdin.write("query\n")
        self.process.stdin.flush()
        return sent

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


@contextmanager
def client(host: Host, server: ServerInfo, **conninfo: str) -> Iterator[Client]:
    c = Client(host, server, **conninfo)
    try:
        yield c
    finally:
        c.stop()


def backend_alive(server: ServerInfo, pid: int) -> bool:
    with psycopg.connect(server.superuser_dsn, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() is not None


def test_a_silent_drop_hangs_the_query_and_keeps_the_backend(server):
    hang_for = 4.0  # well past the fixes below (1 to 3 s); libpq's defaults would wait about 15 minutes
    with Host() as host, client(host, server) as c:
        host.cut()
        c.query()
        with pytest.raises(TimeoutError):
            c.next(timeout=hang_for)  # no answer, no error: the query hangs
        assert backend_alive(server, c.backend_pid)  # and the server never learned the client is gone
    print(f"silent drop, libpq's defaults: the query still hung after {hang_for:g} s, its backend still there")


def test_tcp_user_timeout_ends_the_hang(server):
    with Host() as host, client(host, server, tcp_user_timeout="1000") as c:
        host.cut()
        sent = c.query()
        answer = c.next(timeout=10)
        waited = time.monotonic() - sent
    assert "error" in answer, answer
    # TCP gives up once data has gone unacknowledged for 1 s; its retransmission timer fires a little later.
    assert 1.0 <= answer["after_s"] < 2.0 and waited < 2.5, answer
    print(f"tcp_user_timeout=1000: the query failed after {answer['after_s']:.2f} s: {answer['error'][:60]}")


def test_client_keepalives_find_the_idle_connection_dead_before_it_is_used(server):
    with Host() as host, client(host, server, keepalives_idle="1", keepalives_interval="1", keepalives_count="2") as c:
        wait_until(lambda: _all_acknowledged(host), timeout=5, what="the client's last ACK")
        cut_at = time.monotonic()
        host.cut()
        # The client's own kernel gives up on the idle connection: its socket to the server leaves ESTABLISHED.
        wait_until(lambda: not _client_connected(host), timeout=15, what="the client's keepalives")
        found_dead = time.monotonic() - cut_at
        sent = c.query()
        answer = c.next(timeout=5)
        waited = time.monotonic() - sent
    assert "error" in answer and waited < 0.5, answer  # at once: nothing hangs
    assert 2.0 <= found_dead < 6.0  # idle 1 s, then 2 probes 1 s apart, as asked
    print(f"keepalives 1/1/2: the idle connection found dead {found_dead:.2f} s after the drop;"
          f" the next query failed in {answer['after_s'] * 1000:.0f} ms")


def test_server_keepalives_end_the_backend_of_a_vanished_host(server):
    with Host() as host, client(host, server, options=SERVER_KEEPALIVES) as c:
        wait_until(lambda: _all_acknowledged(host), timeout=5, what="the client's last ACK")
        cut_at = time.monotonic()
        host.cut()
        wait_until(lambda: not backend_alive(server, c.backend_pid), timeout=15, what="the server's keepalives")
        gone_after = time.monotonic() - cut_at
    assert 2.0 <= gone_after < 6.0
    print(f"server tcp_keepalives 1/1/2: the vanished client's backend gone {gone_after:.2f} s after the drop")


def _ss(*filters: str, ns: str | None = None) -> list[list[str]]:
    """`ss -tn` rows (State, Recv-Q, Send-Q, Local, Peer) matching the filters, in a namespace or in this one."""
    argv = [*(["ip", "netns", "exec", ns] if ns else []), "ss", "-tnH", *filters]
    out = subprocess.run(argv, check=True, capture_output=True, text=True, timeout=10).stdout
    return [line.split() for line in out.splitlines() if line.strip()]


def _client_connected(host: Host) -> bool:
    """The client's own kernel still holds its connection to the server (psutil reads this namespace only)."""
    return bool(_ss("state", "established", "dst", host.server_addr, ns=host.ns))


def _all_acknowledged(host: Host) -> bool:
    """The server's side of the client's connection has no byte in flight.

    A byte still unacknowledged when the link goes (the client's delayed ACK of
    its last answer) puts TCP into retransmission, where keepalives never run.
    """
    rows = _ss("state", "established", "dst", host.addr)
    return bool(rows) and all(row[1] == "0" for row in rows)  # without State: Recv-Q, Send-Q, ...
