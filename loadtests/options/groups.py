"""The option groups of `--help`, one name per kind of setting, in the order they are shown.

An option joins a group with `panel=`; a command shows its groups in the order of its first
option in each. Every command uses these names, so the same kind of option sits under the
same heading everywhere.
"""

from __future__ import annotations

from typing import Any

import click

CELLS = "Sweep cells"  # the axes and repeats of `poolcheck sweep`
DEPLOYMENT = "Deployment"  # hosts x workers x pools x size: the budget's terms
POOL = "Pool settings"  # how each pool behaves
SERVER = "Server"  # the PostgreSQL server and its limits
LOAD = "Load"  # the burst shape and who generates it
OWN_APP = "Your own app"  # --target-url and what describes it
SAMPLE_APP = "Sample app"  # how the bundled app and its gunicorn run
FAULTS = "Faults"
THRESHOLDS = "Thresholds"  # what fails a run or a sweep cell
REPORTS = "Reports"  # what is written where, and what goes to stdout
HARNESS = "Harness"  # how the harness itself samples and waits
GENERAL = "Options"  # --config, --verbose and --help: rich-click's own panel, shown last

ORDER = (CELLS, DEPLOYMENT, POOL, SERVER, LOAD, OWN_APP, SAMPLE_APP, FAULTS, THRESHOLDS, REPORTS, HARNESS, GENERAL)

# Each option's group, by its name (the setting it sets): one table for every command, so an
# option found in several commands sits under the same heading in each.
PANELS = {
    # poolcheck sweep's axes
    "repeat": CELLS, "search": CELLS,
    # the budget's terms
    "hosts": DEPLOYMENT, "workers": DEPLOYMENT, "pool_kind": DEPLOYMENT, "min_size": DEPLOYMENT,
    "max_size": DEPLOYMENT, "pool_size": DEPLOYMENT, "max_overflow": DEPLOYMENT, "pools_per_worker": DEPLOYMENT,
    "other_clients": DEPLOYMENT, "surge_hosts": DEPLOYMENT,
    "pool_timeout": POOL, "max_idle": POOL, "max_lifetime": POOL, "max_waiting": POOL, "pool_check": POOL,
    "prod_max_idle": POOL, "prepared_statements": POOL,
    "dsn": SERVER, "max_connections": SERVER, "superuser_reserved_connections": SERVER,
    "reserved_connections": SERVER, "server_settings": SERVER, "server_log": SERVER, "log_line_prefix": SERVER, "allow_overcommit": SERVER,
    "proxy_idle_cut": SERVER, "proxy_mode": SERVER, "proxy_client_timeout": SERVER, "proxy_listen_port": SERVER,
    "pgbouncer": SERVER, "pgbouncer_pool_size": SERVER, "pgbouncer_reserve_pool_size": SERVER,
    "pgbouncer_max_client_conn": SERVER,
    "duration": LOAD, "baseline_users": LOAD, "burst_users": LOAD, "burst_seconds": LOAD, "quiet_seconds": LOAD,
    "cycles": LOAD, "hold_ms": LOAD, "locustfile": LOAD, "locust_workers": LOAD, "locust_remote_workers": LOAD,
    "locust_master_bind": LOAD, "spread_users": LOAD,
    "target_url": OWN_APP, "pool_sizes": OWN_APP, "watch_filter": OWN_APP, "pools": OWN_APP, "metrics_url": OWN_APP,
    "app_pattern": SAMPLE_APP, "max_requests": SAMPLE_APP, "preload": SAMPLE_APP, "server": SAMPLE_APP, "app_port": SAMPLE_APP,
    "faults": FAULTS, "allow_faults": FAULTS,
    # what fails a run
    "max_failure_ratio": THRESHOLDS, "slo_p95_ms": THRESHOLDS, "headroom": THRESHOLDS, "thresholds": THRESHOLDS,
    "fail_on_headroom": THRESHOLDS,
    # what is written and printed
    "json": REPORTS, "results_dir": REPORTS, "out": REPORTS, "force": REPORTS, "plotlyjs": REPORTS,
    "sample_interval": HARNESS, "scrape_interval": HARNESS, "ready_timeout": HARNESS, "web_ui": HARNESS,
    "web_port": HARNESS,
    "config_file": GENERAL, "verbose": GENERAL,
}


def place(params: list[Any], *, own: dict[str, str] | None = None) -> None:
    """Put each option in its group (`own`: a command's exceptions), and the groups in ORDER."""
    for param in params:
        if isinstance(param, click.Option) and not param.hidden:
            param.panel = (own or {}).get(str(param.name)) or PANELS[str(param.name)]  # a new option needs a group here
        elif isinstance(param, click.Option):
            param.panel = None
    params.sort(key=lambda p: ORDER.index(p.panel or GENERAL) if isinstance(p, click.Option) else -1)
