"""The sample app's settings, read once from environment variables."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The pool kinds each anti-pattern of app/antipatterns.py is written for.
PATTERN_POOL_KINDS = {"use-after-return": ("async", "sync"), "autocommit-after-return": ("async", "sync"),
                      "autocommit-per-request": ("async", "sync"), "pool-in-other-loop": ("async",), "blocking-sleep": ("async", "asyncpg")}


def check_pattern_pool_kind(pattern: str, pool_kind: str, *, names: tuple[str, str] = ("APP_PATTERN", "POOL_KIND")) -> None:
    """ValueError when an anti-pattern is not written for the pool kind; `names` are the settings' names to quote."""
    kinds = PATTERN_POOL_KINDS.get(pattern, (pool_kind,))
    if pool_kind not in kinds:
        raise ValueError(f"{names[0]} {pattern}: written for {names[1]} {' or '.join(kinds)}")


class Settings(BaseSettings):
    """Every knob of the system under test; names are the environment variables."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    DATABASE_URL: str = Field(description="libpq URL or key=value string of the database")
    APP_NAME: str = Field("poolcheck-app", max_length=40, description="prefix of application_name")

    POOL_KIND: Literal["async", "sync", "asyncpg", "sqlalchemy"] = "async"
    POOL_MIN_SIZE: int = Field(1, ge=0)
    POOL_MAX_SIZE: int = Field(8, ge=1, description="most connections one pool may hold; for sqlalchemy pool_size + max_overflow")
    POOL_MAX_OVERFLOW: int = Field(
        0, ge=0, description="sqlalchemy only: how many of POOL_MAX_SIZE are overflow; pool_size is the rest"
    )
    POOL_MAX_IDLE: float = Field(600.0, gt=0, description="seconds before an unused connection is closed")
    POOL_MAX_LIFETIME: float = Field(3600.0, gt=0, description="seconds before a connection is recycled")
    POOL_TIMEOUT: float = Field(5.0, gt=0, description="seconds a request waits for a connection")
    POOL_MAX_WAITING: int = Field(0, ge=0, description="queue length before TooManyRequests; 0 is unbounded")
    POOL_CHECK: bool = Field(True, description="check each connection before handing it out")
    POOL_PREPARE: bool = Field(
        True,
        description="server-side prepared statements (asyncpg's statement cache, psycopg's prepare_threshold);"
        " off behind PgBouncer's transaction pooling, which hands each transaction any server connection",
    )

    HOLD_MAX_MS: int = Field(10_000, ge=0, description="upper bound of /items/hold")
    STATEMENT_TIMEOUT_MS: int = Field(30_000, ge=0)

    APP_PATTERN: Literal[
        "default", "use-after-return", "autocommit-after-return", "autocommit-per-request", "pool-before-fork",
        "pool-in-other-loop", "blocking-sleep",
    ] = Field(
        "default", description="a deliberate anti-pattern for poolcheck's failure scenarios (app/antipatterns.py)"
    )

    @model_validator(mode="after")
    def _min_not_above_max(self) -> "Settings":
        if self.POOL_MIN_SIZE > self.POOL_MAX_SIZE:
            raise ValueError(
                f"POOL_MIN_SIZE ({self.POOL_MIN_SIZE}) must not exceed POOL_MAX_SIZE ({self.POOL_MAX_SIZE})"
            )
        return self

    @model_validator(mode="after")
    def _overflow_within_max(self) -> "Settings":
        if self.POOL_MAX_OVERFLOW and self.POOL_KIND != "sqlalchemy":
            raise ValueError(f"POOL_MAX_OVERFLOW: only SQLAlchemy's pool has an overflow, not POOL_KIND {self.POOL_KIND}")
        if self.POOL_MAX_OVERFLOW >= self.POOL_MAX_SIZE:
            raise ValueError(
                f"POOL_MAX_OVERFLOW ({self.POOL_MAX_OVERFLOW}) must be below POOL_MAX_SIZE ({self.POOL_MAX_SIZE}):"
                " pool_size is the difference and must be at least 1"
            )
        return self

    @model_validator(mode="after")
    def _pattern_fits_pool_kind(self) -> "Settings":
        check_pattern_pool_kind(self.APP_PATTERN, self.POOL_KIND)
        return self


APP_PATTERNS: tuple[str, ...] = get_args(Settings.model_fields["APP_PATTERN"].annotation)
