"""The pools of one worker of an app of your own, as its team declares them.

    --pool sync:min=4,max=4 --pool asyncpg:max=10,max_idle=300,max_lifetime=3600

A pool is its library's kind (any word: sync, async, asyncpg, sqlalchemy, ...)
and what is known of it: `max` (required: the budget needs it), `min`,
`max_idle` and `max_lifetime` when known. A figure that needs a setting nobody
declared is "not known", never psycopg's default.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

_KIND = re.compile(r"^[A-Za-z][\w.-]*$")
_NAMES = {"min": "min_size", "max": "max_size", "max_idle": "max_idle", "max_lifetime": "max_lifetime"}
MAX_POOL = 1000


@dataclass(frozen=True)
class PoolSpec:
    kind: str
    max_size: int
    min_size: int | None = None
    max_idle: float | None = None
    max_lifetime: float | None = None

    def __str__(self) -> str:
        known = [f"{short}={getattr(self, name):g}" for short, name in _NAMES.items() if getattr(self, name) is not None]
        return f"{self.kind}:{','.join(known)}"

    @property
    def fixed(self) -> bool:
        """Opened full and never shrinking: min_size = max_size."""
        return self.min_size == self.max_size

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_pool(spec: str) -> PoolSpec:
    """`KIND:max=N[,min=N,max_idle=S,max_lifetime=S]` into a PoolSpec; ValueError says what is wrong."""
    kind, sep, rest = spec.strip().partition(":")
    if not sep or not _KIND.match(kind):
        raise ValueError(f"expected KIND:max=N[,min=N,max_idle=S,max_lifetime=S], got {spec!r}")
    values: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in rest.split(","))):
        name, eq, value = item.partition("=")
        if not eq or name.strip() not in _NAMES:
            raise ValueError(f"{item!r}: expected one of {', '.join(n + '=' for n in _NAMES)}")
        values[_NAMES[name.strip()]] = _number(name.strip(), value.strip())
    if "max_size" not in values:
        raise ValueError(f"{spec!r}: max= is required, the most connections the pool may hold")
    pool = PoolSpec(kind=kind, **values)
    if not 1 <= pool.max_size <= MAX_POOL:
        raise ValueError(f"{spec!r}: max must be from 1 to {MAX_POOL}")
    if pool.min_size is not None and not 0 <= pool.min_size <= pool.max_size:
        raise ValueError(f"{spec!r}: min must be from 0 to max")
    return pool


def _number(name: str, text: str) -> int | float:
    try:
        value = int(text) if name in ("min", "max") else float(text)
    except ValueError:
        raise ValueError(f"{name}={text!r}: not a number") from None
    if name in ("max_idle", "max_lifetime") and value <= 0:
        raise ValueError(f"{name}={text!r}: must be above 0 seconds")
    return value


def read_pools(entries: list[dict[str, Any]]) -> list[PoolSpec]:
    """The manifest's `pools` back as PoolSpecs."""
    return [PoolSpec(**entry) for entry in entries]


def per_worker_min(pools: list[PoolSpec]) -> int | None:
    """Connections a worker keeps when idle: the sum of min_size; None when one is not declared."""
    mins = [p.min_size for p in pools]
    return None if any(m is None for m in mins) else sum(m for m in mins if m is not None)


def drain_idle(pools: list[PoolSpec]) -> float | None:
    """The max_idle that paces a worker's drain: the slowest pool that can shrink.

    0 when no pool can shrink (all fixed); None when one that can has no declared max_idle.
    """
    shrinking = [p for p in pools if not p.fixed]
    if any(p.max_idle is None or p.min_size is None for p in shrinking):
        return None
    return max((p.max_idle for p in shrinking if p.max_idle is not None), default=0.0)


def shortest_lifetime(pools: list[PoolSpec]) -> float | None:
    """The shortest declared max_lifetime: the first a connection could outlive; None when none is declared."""
    lifetimes = [p.max_lifetime for p in pools if p.max_lifetime is not None]
    return min(lifetimes) if lifetimes else None


def pools_label(sizes: tuple[int, ...]) -> str:
    return "p" + "+".join(str(size) for size in sizes)
