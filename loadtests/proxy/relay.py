"""The relay: every accepted connection gets its own connection to the upstream.

Bytes are forwarded both ways as they come; a connection with no byte in
either direction for `idle_cut` seconds is cut, as a cloud proxy or NAT
gateway does:

- `reset`: both sides are closed with SO_LINGER 0, so the client and the
  server each get a RST (an Azure load balancer with "TCP reset on idle", a
  proxy that aborts): the client's next query fails at once, the server's
  backend goes away.
- `silent`: nothing is sent to either side and nothing more is forwarded (AWS
  NAT gateways, GCP and most load balancers just forget the flow). Both
  sockets stay open; what either side sends is read and dropped, so the
  client's next query gets no answer and hangs. The server's backend stays
  too: its keepalive probes are answered by the relay, as they would go
  unanswered-but-unnoticed for hours behind a real one (the server's default
  keepalive waits 2 h); it ends when the server closes it or the relay stops.

On loopback the relay's kernel acknowledges whatever the client sends after a
silent cut, so the client's own kernel timeouts (libpq's `tcp_user_timeout`,
keepalives), which end the hang behind a real load balancer, never fire here.
`client_timeout` stands for them: that long after a hung connection's first
unanswered bytes, the relay resets the client side, as the client's kernel
would give up (its `tcp_user_timeout`, or about 15 min of retransmissions by
Linux's default). Without it the hang lasts until the client gives up itself.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import socket
import struct
import time
from dataclasses import dataclass, field

from loadtests.proxy.events import RESET, EventLog

_READ_SIZE = 65536
_UPSTREAM_CONNECT_TIMEOUT = 10.0
UP, DOWN = "up", "down"  # client to server, server to client


@dataclass
class _Link:
    """One relayed connection: its two streams and when a byte last went through."""

    conn: int
    client_r: asyncio.StreamReader
    client_w: asyncio.StreamWriter
    server_r: asyncio.StreamReader
    server_w: asyncio.StreamWriter
    opened: float
    last_activity: float
    last_direction: str | None = None
    bytes_up: int = 0
    bytes_down: int = 0
    max_idle_s: float = 0.0
    cut_at: float | None = None
    hang_started: float | None = None
    open_sides: set[str] = field(default_factory=lambda: {"client", "server"})

    def forwarded(self, direction: str, n: int, now: float) -> None:
        self.max_idle_s = max(self.max_idle_s, now - self.last_activity)
        self.last_activity = now
        self.last_direction = direction
        if direction == UP:
            self.bytes_up += n
        else:
            self.bytes_down += n

    def longest_idle(self, now: float) -> float:
        # The pause running now (or the one that was cut) counts too.
        return max(self.max_idle_s, (self.cut_at or now) - self.last_activity)

    def writer(self, side: str) -> asyncio.StreamWriter:
        return self.client_w if side == "client" else self.server_w


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close so that the peer gets a RST rather than a FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass  # already gone
    writer.transport.abort()


def _other(side: str) -> str:
    return "server" if side == "client" else "client"


class Relay:
    """Listens on 127.0.0.1, relays to `upstream`, cuts idle connections, logs every event."""

    def __init__(
        self,
        *,
        upstream: tuple[str, int],
        listen_port: int,
        mode: str,
        idle_cut: float,
        client_timeout: float | None,
        max_seconds: float,
        log: EventLog,
    ) -> None:
        self.upstream = upstream
        self.listen_port = listen_port
        self.mode = mode
        self.idle_cut = idle_cut
        self.client_timeout = client_timeout
        self.max_seconds = max_seconds
        self.log = log
        self.should_exit = False
        self.links: dict[int, _Link] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._numbers = itertools.count(1)
        self._parent = os.getppid()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._request_exit)

    def _request_exit(self) -> None:
        self.should_exit = True

    async def serve(self) -> str:
        """Relay until stopped; return why it stopped."""
        server = await asyncio.start_server(self._accept, "127.0.0.1", self.listen_port)
        port = server.sockets[0].getsockname()[1]
        self.log.write(
            "listening", port=port, upstream=f"{self.upstream[0]}:{self.upstream[1]}", mode=self.mode,
            idle_cut_s=self.idle_cut, client_timeout_s=self.client_timeout, max_seconds=self.max_seconds,
            pid=os.getpid(),
        )
        reason = await self._watch()
        server.close()
        still_open = len(self.links)
        for link in list(self.links.values()):
            for side in sorted(link.open_sides):
                self._close_side(link, side, "stopped", time.monotonic())
        if self._handlers:
            # Closed sockets end their pumps; let them finish rather than be cancelled mid-read.
            await asyncio.wait(self._handlers, timeout=2)
        self.log.write("stopped", reason=reason, open=still_open)
        return reason

    async def _watch(self) -> str:
        """Cut what has been idle too long; stop on a signal, an orphaning or max_seconds."""
        start = time.monotonic()
        tick = min(0.1, self.idle_cut / 20)
        while True:
            if self.should_exit:
                return "signal"
            if os.getppid() != self._parent:
                return "orphaned"  # the runner was killed: nobody will stop us
            now = time.monotonic()
            if now - start >= self.max_seconds:
                return "max_seconds"
            for link in list(self.links.values()):
                if link.cut_at is None and now - link.last_activity >= self.idle_cut:
                    self._cut(link, now)
                elif self._client_gives_up(link, now):
                    self._close_side(link, "client", "client_timeout", now)
            await asyncio.sleep(tick)

    def _client_gives_up(self, link: _Link, now: float) -> bool:
        return (
            self.client_timeout is not None
            and link.hang_started is not None
            and "client" in link.open_sides
            and now - link.hang_started >= self.client_timeout
        )

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._relay(client_r, client_w)
        finally:
            self._handlers.discard(task)

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        conn = next(self._numbers)
        client_port = client_w.get_extra_info("peername")[1]
        self.log.write("open", conn=conn, client_port=client_port)
        try:
            server_r, server_w = await asyncio.wait_for(
                asyncio.open_connection(*self.upstream), _UPSTREAM_CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError) as exc:
            self.log.write("upstream_failed", conn=conn, error=str(exc) or type(exc).__name__)
            _reset(client_w)
            return
        # Which of the relay's own sockets carries this client: the server sees that one as its client, and
        # whose connection it is (the app's worker, for an app of your own) is told by this pairing alone.
        sockname = server_w.get_extra_info("sockname")
        self.log.write("linked", conn=conn, client_port=client_port, upstream_addr=sockname[0], upstream_port=sockname[1])
        now = time.monotonic()
        link = _Link(conn, client_r, client_w, server_r, server_w, opened=now, last_activity=now)
        self.links[conn] = link
        await asyncio.gather(self._pump(link, UP), self._pump(link, DOWN))

    async def _pump(self, link: _Link, direction: str) -> None:
        source = "client" if direction == UP else "server"
        reader = link.client_r if direction == UP else link.server_r
        target = link.writer(_other(source))
        reason = "eof"
        try:
            while True:
                data = await reader.read(_READ_SIZE)
                if not data:
                    break
                now = time.monotonic()
                if link.cut_at is not None:
                    # Silently cut: dropped. The client's first bytes are a request that will hang.
                    if direction == UP and link.hang_started is None:
                        link.hang_started = now
                        self.log.write("hang", conn=link.conn, bytes=len(data), after_cut_s=round(now - link.cut_at, 3))
                    continue
                link.forwarded(direction, len(data), now)
                target.write(data)
                await target.drain()
        except OSError:
            reason = "error"  # a reset from this side, or the write to the other failed
        self._side_gone(link, source, reason)

    def _side_gone(self, link: _Link, side: str, reason: str) -> None:
        if side not in link.open_sides:
            return  # the relay closed it already (a cut, a timeout, the stop)
        now = time.monotonic()
        self._close_side(link, side, reason, now)
        if link.cut_at is None and _other(side) in link.open_sides:
            # An ordinary proxy passes a close on; a silent cut passes nothing.
            self._close_side(link, _other(side), "relay", now)

    def _cut(self, link: _Link, now: float) -> None:
        link.cut_at = now
        self.log.write(
            "cut", conn=link.conn, mode=self.mode, idle_s=round(now - link.last_activity, 3),
            age_s=round(now - link.opened, 3), last_direction=link.last_direction,
            bytes_up=link.bytes_up, bytes_down=link.bytes_down,
        )
        if self.mode == RESET:
            for side in sorted(link.open_sides):
                self._close_side(link, side, "cut", now)

    def _close_side(self, link: _Link, side: str, reason: str, now: float) -> None:
        if side not in link.open_sides:
            return
        link.open_sides.discard(side)
        writer = link.writer(side)
        if reason in ("cut", "client_timeout"):
            _reset(writer)
        else:
            writer.close()
        fields: dict[str, object] = {"max_idle_s": round(link.longest_idle(now), 3)}
        if side == "client" and link.hang_started is not None:
            fields["hang_s"] = round(now - link.hang_started, 3)
        self.log.write("end", conn=link.conn, side=side, reason=reason, **fields)
        if not link.open_sides:
            del self.links[link.conn]

