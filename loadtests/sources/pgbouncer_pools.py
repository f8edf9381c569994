"""The PgBouncer sampler: its admin console's SHOW POOLS into pgbouncer_pools.csv.

Behind PgBouncer the server sees PgBouncer's server connections, not the
app's: the app's own connections (PgBouncer's clients) are counted here, one
row per database/user pool and sample, on the collector's clock (UTC stamps).
Its admin connection is itself a PgBouncer client (of the `pgbouncer`
database, whose pool is left out).

    POOLCHECK_PGBOUNCER_DSN=... python -m loadtests.sources.pgbouncer_pools --out RUN_DIR --interval 0.1
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

from loadtests.run_folder import PGBOUNCER_POOLS_CSV, iso_time
from loadtests.sources.sampling_loop import SamplingLoop

logger = logging.getLogger("poolcheck.pgbouncer_pools")

ADMIN_DATABASE = "pgbouncer"
COUNTS = ("cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_used", "sv_login")
COLUMNS = ("timestamp", "elapsed_s", "database", "user", *COUNTS, "maxwait_s", "pool_mode")


def show_pools(conn: psycopg.Connection) -> list[dict[str, str]]:
    """SHOW POOLS as dicts of text: the admin console speaks the simple query protocol only."""
    result = conn.pgconn.exec_(b"SHOW POOLS")
    names = [result.fname(i).decode() for i in range(result.nfields)]
    rows = []
    for r in range(result.ntuples):
        rows.append({names[c]: (result.get_value(r, c) or b"").decode() for c in range(result.nfields)})
    return rows


def to_rows(pools: Sequence[dict[str, str]], *, timestamp: float, elapsed_s: float) -> list[list[Any]]:
    """The app's pools (never the admin console's own) as CSV rows; maxwait in seconds."""
    rows = []
    for pool in pools:
        if pool.get("database") == ADMIN_DATABASE:
            continue
        maxwait = int(pool.get("maxwait") or 0) + int(pool.get("maxwait_us") or 0) / 1e6
        rows.append([
            iso_time(timestamp), f"{elapsed_s:.3f}", pool.get("database", ""), pool.get("user", ""),
            *(int(pool.get(name) or 0) for name in COUNTS), f"{maxwait:.6f}", pool.get("pool_mode", ""),
        ])
    return rows


def read_pools(path: Path) -> list[dict[str, Any]]:
    """Every complete row of a pgbouncer_pools.csv, numbers parsed; a torn last line is skipped."""
    rows: list[dict[str, Any]] = []
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    rows.append({
                        "timestamp": row["timestamp"],
                        "elapsed_s": float(row["elapsed_s"]),
                        "database": row["database"],
                        "user": row["user"],
                        **{name: int(row[name]) for name in COUNTS},
                        "maxwait_s": float(row["maxwait_s"]),
                        "pool_mode": row["pool_mode"],
                    })
                except (KeyError, TypeError, ValueError):
                    continue
    except OSError:
        return []
    return rows


def _connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=5)


def sample_forever(*, dsn: str, out_dir: Path, loop: SamplingLoop) -> None:
    start = time.time()
    conn = _connect(dsn)
    with open(out_dir / PGBOUNCER_POOLS_CSV, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        f.flush()
        for _ in loop.ticks():
            t0 = time.time()
            try:
                writer.writerows(to_rows(show_pools(conn), timestamp=t0, elapsed_s=t0 - start))
                f.flush()
            except psycopg.Error as exc:
                logger.warning("SHOW POOLS failed (%s); reconnecting", str(exc).strip().splitlines()[0])
                conn.close()
                conn = loop.reconnect(lambda: _connect(dsn), errors=(psycopg.Error,)) or conn
    conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.sources.pgbouncer_pools", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between samples")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop by itself after this long")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    dsn = os.environ.get("POOLCHECK_PGBOUNCER_DSN")
    if not dsn:
        print("pgbouncer_pools: POOLCHECK_PGBOUNCER_DSN is not set", file=sys.stderr)
        return 2
    loop = SamplingLoop(interval=args.interval, max_seconds=args.max_seconds)
    loop.install_signal_handlers()
    sample_forever(dsn=dsn, out_dir=args.out, loop=loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
