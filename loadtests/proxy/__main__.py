"""The cloud-proxy emulator as a process of a run.

    python -m loadtests.proxy --out RUN_DIR --upstream 127.0.0.1:5432 \\
        --idle-cut 350 --mode silent [--listen-port 0] [--client-timeout 30] [--max-seconds 3600]

It listens on 127.0.0.1 (`--listen-port 0`: a free port, named in its first
event), writes RUN_DIR/proxy_events.jsonl, and stops on SIGTERM or SIGINT,
when the process that started it disappears, or after `--max-seconds`.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from loadtests.proxy.events import MODES, SILENT, EventLog
from loadtests.proxy.relay import Relay
from loadtests.run_folder import PROXY_EVENTS_JSONL


class _BadInput(ValueError):
    """One line naming the problem: exit code 2, nothing started."""


def _upstream(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise _BadInput(f"--upstream must be HOST:PORT, got {text!r}")
    return host, int(port)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.proxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="run folder (proxy_events.jsonl goes there)")
    parser.add_argument("--upstream", required=True, help="the server (or PgBouncer) as HOST:PORT")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1; 0 for a free one")
    parser.add_argument("--idle-cut", type=float, required=True, help="cut connections idle this many seconds")
    parser.add_argument("--mode", choices=MODES, default="reset", help="reset: RST to both sides; silent: drop")
    parser.add_argument("--client-timeout", type=float, default=None,
                        help="silent mode: reset the client side this long after its first unanswered bytes, "
                        "standing for its kernel's timeout (tcp_user_timeout); default: never")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop by itself after this long")
    return parser.parse_args(argv)


def _check(args: argparse.Namespace) -> tuple[str, int]:
    if not args.out.is_dir():
        raise _BadInput(f"--out {args.out} is not a folder")
    if not args.idle_cut > 0:
        raise _BadInput(f"--idle-cut must be positive, got {args.idle_cut:g}")
    if not args.max_seconds > 0:
        raise _BadInput(f"--max-seconds must be positive, got {args.max_seconds:g}")
    if not 0 <= args.listen_port < 65536:
        raise _BadInput(f"--listen-port must be 0 to 65535, got {args.listen_port}")
    if args.client_timeout is not None:
        if args.mode != SILENT:
            raise _BadInput("--client-timeout applies to --mode silent only")
        if not args.client_timeout > 0:
            raise _BadInput(f"--client-timeout must be positive, got {args.client_timeout:g}")
    return _upstream(args.upstream)


async def _serve(args: argparse.Namespace, upstream: tuple[str, int]) -> None:
    log = EventLog(args.out / PROXY_EVENTS_JSONL)
    try:
        relay = Relay(
            upstream=upstream, listen_port=args.listen_port, mode=args.mode, idle_cut=args.idle_cut,
            client_timeout=args.client_timeout, max_seconds=args.max_seconds, log=log,
        )
        relay.install_signal_handlers()
        await relay.serve()
    finally:
        log.close()


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        upstream = _check(args)
    except _BadInput as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args, upstream))
    except OSError as exc:  # the port is taken, most often
        print(f"proxy: cannot listen on 127.0.0.1:{args.listen_port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
