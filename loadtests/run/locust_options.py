"""Distributed load with Locust's own master and workers, and the locustfiles they run.

One Locust process saturates one core. With `--locust-workers N` the harness
runs a Locust master (shape, statistics, the CSV files) and N local workers
(the users); workers on other machines join the same master through
`--locust-master-bind`. Only the master writes results, so a run keeps one
set of statistics on one timeline whatever the number of workers.
"""

from __future__ import annotations

import sys
from pathlib import Path

from loadtests.addresses import MasterBind

BUNDLED_LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"
# The burst shape and the harness's Locust options, without the sample app's users.
SHAPE_ONLY_LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "burst_shape.py"


def locustfile_argument(custom: Path | None) -> str:
    """Locust's `-f`: the bundled locustfile, or the burst shape beside the user's own users.

    Locust merges comma-separated locustfiles; the shape comes first, so it is
    the one that drives the load even if the user's file brings a shape too.
    """
    return str(BUNDLED_LOCUSTFILE) if custom is None else f"{SHAPE_ONLY_LOCUSTFILE},{custom}"


def master_options(bind: MasterBind, *, expect_workers: int, max_wait_s: float) -> list[str]:
    """Options that make the headless Locust a master waiting for its workers (for at most `max_wait_s`)."""
    return [
        "--master",
        "--master-bind-host", bind.host,
        "--master-bind-port", str(bind.port),
        "--expect-workers", str(expect_workers),
        "--expect-workers-max-wait", f"{max_wait_s:g}",
    ]


def worker_argv(bind: MasterBind, *, locustfile: str, logfile: Path) -> list[str]:
    """A local Locust worker: it gets the options and the shape's user counts from the master."""
    return [
        sys.executable, "-m", "locust",
        "-f", locustfile,
        "--worker",
        "--master-host", bind.local_host,
        "--master-port", str(bind.port),
        "--logfile", str(logfile),
    ]
