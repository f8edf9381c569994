"""The scraper: each app instance's `/metrics` into pool_stats.csv, and which workers are alive.

Its own process, like the collector, for the same reasons: a slow or stuck
HTTP request cannot stall the runner's main loop, its CPU is measured apart,
and it stops by itself when the runner disappears. One request per app
instance reaches every worker of it (prometheus_client's multiprocess mode).

It also records, once a round, whether each worker pid named by an
`application_name` in the collector's latest sample is still alive
(workers.csv): only then can a summary tell, later, that a connection
outlived its process.

    python -m loadtests.sources.scraper --out RUN_DIR --url http://127.0.0.1:8000 --interval 1
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, TextIO

from loadtests.run_folder import APP_NAME, CONNECTIONS_CSV, POOL_STATS_CSV, WORKERS_CSV, app_prefix, iso_time
from loadtests.sources.collector import collector_start
from loadtests.sources.csv_tail import last_row
from loadtests.sources.pool_stats import COLUMNS, WORKER_COLUMNS, named_pids, parse_metrics, stat_rows
from loadtests.sources.sampling_loop import SamplingLoop

logger = logging.getLogger("poolcheck.scraper")


def pid_alive(pid: int) -> bool:
    """True while the process exists (a zombie counts until its parent reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Scraper:
    """Scrapes every `interval` seconds until asked to stop, or `max_seconds` pass."""

    def __init__(self, *, out_dir: Path, urls: list[str], interval: float, max_seconds: float, app_prefix: str) -> None:
        self.out_dir = out_dir
        self.urls = urls
        self.interval = interval
        self.app_prefix = app_prefix
        self.loop = SamplingLoop(interval=interval, max_seconds=max_seconds)
        # The collector started first (the runner waits for its first row): share its clock.
        self._origin = collector_start(out_dir / CONNECTIONS_CSV) or time.time()

    def run(self) -> None:
        with open(self.out_dir / POOL_STATS_CSV, "w", newline="") as stats, open(self.out_dir / WORKERS_CSV, "w", newline="") as workers:
            stats_writer, workers_writer = csv.writer(stats), csv.writer(workers)
            stats_writer.writerow(COLUMNS)
            workers_writer.writerow(WORKER_COLUMNS)
            self._loop(stats_writer, stats, workers_writer, workers)

    def _loop(self, stats_writer: Any, stats: TextIO, workers_writer: Any, workers: TextIO) -> None:
        for _ in self.loop.ticks():
            now = time.time()
            for host, url in enumerate(self.urls, start=1):
                stats_writer.writerows(self._scrape(url, host=host, now=now))
            workers_writer.writerows(self._liveness(now))
            stats.flush()
            workers.flush()

    def _scrape(self, url: str, *, host: int, now: float) -> list[list[Any]]:
        try:
            # A base URL of the sample app gets its /metrics; a --metrics-url is taken as given.
            target = url if urllib.parse.urlsplit(url).path not in ("", "/") else f"{url.rstrip('/')}/metrics"
            with urllib.request.urlopen(target, timeout=min(self.interval * 2, 5)) as response:
                text = response.read().decode()
        except (OSError, urllib.error.URLError) as exc:
            logger.warning("scrape of %s failed: %s", url, exc)
            return []
        return stat_rows(parse_metrics(text), timestamp=now, elapsed_s=now - self._origin, host=host)

    def _liveness(self, now: float) -> list[list[Any]]:
        sample = last_row(self.out_dir / CONNECTIONS_CSV) or {}
        by_application = json.loads(sample.get("by_application") or "{}")
        named = named_pids(by_application, app_prefix=self.app_prefix)
        stamp, elapsed = iso_time(now), f"{now - self._origin:.3f}"
        return [[stamp, elapsed, pid, int(pid_alive(pid)), n] for pid, n in sorted(named.items())]


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m loadtests.sources.scraper", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--url", action="append", default=[], help="base URL of an app instance (repeatable)")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between scrapes")
    parser.add_argument("--max-seconds", type=float, default=3600, help="stop by itself after this long")
    parser.add_argument("--app-prefix", default=app_prefix(APP_NAME), help="application_name prefix before a worker pid")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.interval <= 0:
        print("scraper: --interval must be positive", file=sys.stderr)
        return 2
    scraper = Scraper(
        out_dir=args.out, urls=args.url, interval=args.interval, max_seconds=args.max_seconds, app_prefix=args.app_prefix
    )
    scraper.loop.install_signal_handlers()
    scraper.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
