"""The configuration table of a report: the settings that decide the result, in a few rows.

The pools, the server and the load shape, each as one row in its own terms;
settings given on the command line are marked. Every other setting is in
the page's full list, further down.
"""

from __future__ import annotations

from typing import Any


def configuration_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(setting, value) rows; a setting the user declared ends with " *"."""
    config, declared = manifest["config"], set(manifest.get("declared") or ())

    def value(name: str) -> str:
        shown = config.get(name)
        return f"{shown:g}" if isinstance(shown, float) else str(shown)

    def row(name: str) -> tuple[str, str]:
        return (f"{name} *" if name in declared else name, value(name))

    names = ["hosts", "workers", "pool_kind"]
    if config.get("max_overflow") is not None and config.get("pool_kind") == "sqlalchemy":
        names += ["pool_size", "max_overflow"]
    else:
        names += ["min_size", "max_size"]
    names += ["pool_timeout", "max_idle", "max_lifetime", "max_connections", "duration", "baseline_users",
              "burst_users", "burst_seconds", "quiet_seconds", "hold_ms"]
    rows = [row(name) for name in names if name in config]
    rows += [row(name) for name in ("app_pattern", "target_url", "faults") if config.get(name) not in (None, "", [], "default")]
    return rows
