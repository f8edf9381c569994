"""A finding of the advice, and the settings a rule may rely on.

A finding names the figure that triggered it (with its values), the setting
to change, the suggested value and why. For an app the harness did not start
(`--target-url`), a setting the user did not declare is not known: a rule
that needs it says so instead of borrowing the sample app's defaults.
"""

from __future__ import annotations

from typing import Any

from loadtests.analysis.known_pools import KnownPools, known_pools

FAILURE, WARNING, INFO = "failure", "warning", "info"
SEVERITIES = (FAILURE, WARNING, INFO)

Finding = dict[str, Any]

# A worker's pool settings, as the declared pools give them (loadtests/analysis/known_pools.py): per worker.
_FROM_POOLS = {"min_size": "per_worker_min", "max_size": "per_worker_max", "max_idle": "drain_idle",
               "max_lifetime": "max_lifetime"}
# Their names in a --pool declaration.
_POOL_KEYS = {"max_size": "max=N", "min_size": "min=N", "max_idle": "max_idle=S", "max_lifetime": "max_lifetime=S"}
# Flags of `poolcheck run` whose RunConfig field has another name.
_FLAG_FIELDS = {"no_pool_check": "pool_check", "fault": "faults", "server_setting": "server_settings"}


def finding(
    rule: str,
    severity: str,
    *,
    figure: dict[str, Any],
    setting: str | None,
    suggested: Any,
    why: str,
    text: str,
) -> Finding:
    """One finding; `suggested` is None when no value can be given (the text says why)."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, got {severity!r}")
    return {
        "rule": rule,
        "severity": severity,
        "figure": figure,
        "setting": setting,
        "suggested": suggested,
        "why": why,
        "text": text,
    }


class Known:
    """The run's settings that are known: all of them for the sample app, the declared ones for your own app."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.config: dict[str, Any] = manifest["config"]
        self.own_app = self.config.get("target_url") is not None
        self.declared = declared_settings(manifest)
        # Your own app's pools as declared (--pool, [[pool]], --pool-sizes): what they tell, and only that.
        self.pools: KnownPools | None = known_pools(manifest) if self.own_app and "pools" in manifest else None

    def get(self, name: str) -> Any:
        """The setting's value, or None when the app is not the harness's own and nobody declared it.

        An own app's pool settings come from its declared pools, per worker: min_size
        is what a worker keeps, max_size what it may hold, max_idle the one that paces
        its drain (0: no pool shrinks), max_lifetime the shortest.
        """
        if self.pools is not None and name in _FROM_POOLS:
            return getattr(self.pools, _FROM_POOLS[name])
        if self.own_app and name not in self.declared:
            return None
        return self.config.get(name)

    def missing(self, *names: str) -> list[str]:
        return [name for name in names if self.get(name) is None]


def declared_settings(manifest: dict[str, Any]) -> frozenset[str]:
    """Settings given explicitly: the manifest's `declared` list, else the flags of the recorded command line.

    Settings from a `--config` file are known only through `declared`.
    """
    if "declared" in manifest:
        return frozenset(manifest["declared"])
    names = set()
    for token in manifest.get("argv", []):
        if token.startswith("--"):
            name = token[2:].split("=", 1)[0].replace("-", "_")
            names.add(_FLAG_FIELDS.get(name, name))
    return frozenset(names)


def flag(name: str) -> str:
    """The `poolcheck run` flag that declares a setting."""
    return "--" + name.replace("_", "-")


def not_known(names: list[str]) -> str:
    """What was not declared, and the flags that declare it: pool settings go in each --pool."""
    pool = [_POOL_KEYS[name] for name in names if name in _POOL_KEYS]
    flags = ", ".join([flag(name) for name in names if name not in _POOL_KEYS]
                      + ([f"--pool KIND:{','.join(['max=N', *[k for k in pool if k != 'max=N']])} for each pool"] if pool else []))
    return f"not known: {', '.join(names)} of your app {'was' if len(names) == 1 else 'were'} not declared (give {flags})"
