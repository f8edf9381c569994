"""What Locust's own CSV files leave out, recorded beside them by the locustfile.

`locust_load.json` holds when the shape started (t = 0 of every chart),
`locust_failures_by_second.csv` the failures of each error class per second
(stamped with the moment of the count, to the millisecond: the failures of the
second before it), so the report can draw failures by class over time,
`locust_users.csv` the number of running users with the moment it changed, and
`locust_requests_by_second.csv` the requests and failures of each second in
which they finished: the history's rows are stamped with the whole second in
which Locust wrote them, up to a second after the requests they count.
"""

from __future__ import annotations

import csv
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent

from loadtests.failure_classes import error_class
from loadtests.run_folder import FAILURES_BY_SECOND_CSV, LOAD_JSON, REQUESTS_BY_SECOND_CSV, USERS_CSV, write_atomically

logger = logging.getLogger("poolcheck.load_record")

FAILURE_COLUMNS = ("timestamp", "error_class", "count")
REQUEST_COLUMNS = ("second", "requests", "failures")
USER_COLUMNS = ("timestamp", "users")


class FailureCounter:
    """Appends, every second, how many failures of each class Locust counted since the last look.

    It reads Locust's own aggregated error table, which on a distributed
    master holds what every worker reported, so it counts in both modes.
    """

    def __init__(self, path: Path, *, stats: Any) -> None:
        self.path = path
        self.stats = stats
        self.seen: Counter[str] = Counter()
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(FAILURE_COLUMNS)

    def totals(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for entry in self.stats.errors.values():
            counts[error_class(str(entry.error))] += entry.occurrences
        return counts

    def flush(self) -> None:
        # The moment itself, not its whole second: a row stamped with the second it was written in
        # would be drawn up to a second before the failures it counts.
        now, totals = round(time.time(), 3), self.totals()
        if any(totals[name] < count for name, count in self.seen.items()):
            self.seen = Counter()  # the web UI reset its statistics for a new test
        new = {name: totals[name] - self.seen[name] for name in sorted(totals) if totals[name] > self.seen[name]}
        if not new:
            return
        self.seen = totals
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerows([now, name, count] for name, count in new.items())

    def flush_every_second(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.flush()


class RequestsBySecond:
    """Rewrites, every second, Locust's own count of requests and failures per second of their end.

    Locust keeps these counts for its whole test (`num_reqs_per_sec`, merged
    from every worker on a distributed master), keyed by the whole second in
    which each request finished.
    """

    def __init__(self, path: Path, *, stats: Any) -> None:
        self.path = path
        self.stats = stats

    def flush(self) -> None:
        total = self.stats.total
        requests, failures = dict(total.num_reqs_per_sec), dict(total.num_fail_per_sec)
        lines = [",".join(REQUEST_COLUMNS)]
        lines += [f"{second},{requests.get(second, 0)},{failures.get(second, 0)}" for second in sorted(requests)]
        write_atomically(self.path, "\n".join(lines) + "\n")

    def flush_every_second(self) -> None:
        while True:
            gevent.sleep(1.0)
            self.flush()


class UserCount:
    """Appends the number of running users, with the moment it changed, looked at ten times a second.

    Locust's history holds it once a second, stamped with the whole second in
    which the row was written: a chart would draw a burst's start up to a second early.
    """

    def __init__(self, path: Path, *, environment: Any) -> None:
        self.path = path
        self.environment = environment
        self.last: int | None = None
        with open(path, "w", newline="") as f:
            csv.writer(f).writerow(USER_COLUMNS)

    def look(self) -> None:
        runner = self.environment.runner
        users = runner.user_count if runner is not None else 0
        if users == self.last:
            return
        self.last = users
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([round(time.time(), 3), users])

    def look_often(self) -> None:
        while True:
            gevent.sleep(0.1)
            self.look()


def _record_start(path: Path) -> None:
    if not path.exists():  # a restarted test in the web UI keeps the first start
        path.write_text(json.dumps({"started_at_epoch": round(time.time(), 3)}) + "\n")


def install(environment: Any) -> None:
    """Hook the recorders into a Locust environment that writes CSV files (`--csv PREFIX`)."""
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if not prefix:
        return
    run_dir = Path(prefix).parent  # the runner passes `--csv <run folder>/locust`
    counter = FailureCounter(run_dir / FAILURES_BY_SECOND_CSV, stats=environment.stats)
    per_second = RequestsBySecond(run_dir / REQUESTS_BY_SECOND_CSV, stats=environment.stats)
    environment.events.test_start.add_listener(lambda **kwargs: _record_start(run_dir / LOAD_JSON))
    users = UserCount(run_dir / USERS_CSV, environment=environment)
    environment.events.quitting.add_listener(lambda **kwargs: (counter.flush(), per_second.flush(), users.look()))
    gevent.spawn(counter.flush_every_second)
    gevent.spawn(per_second.flush_every_second)
    gevent.spawn(users.look_often)
