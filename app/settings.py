"""The sample app's settings, read once from environment variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob of the system under test; names are the environment variables."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    DATABASE_URL: str = Field(description="libpq URL or key=value string of the database")
    APP_NAME: str = Field("poolcheck-app", max_length=40, description="prefix of application_name")

    POOL_KIND: Literal["async", "sync"] = "async"
    POOL_MIN_SIZE: int = Field(1, ge=0)
    POOL_MAX_SIZE: int = Field(8, ge=1)
    POOL_MAX_IDLE: float = Field(600.0, gt=0, description="seconds before an unused connection is closed")
    POOL_MAX_LIFETIME: float = Field(3600.0, gt=0, description="seconds before a connection is recycled")
    POOL_TIMEOUT: float = Field(5.0, gt=0, description="seconds a request waits for a connection")
    POOL_MAX_WAITING: int = Field(0, ge=0, description="queue length before TooManyRequests; 0 is unbounded")
    POOL_CHECK: bool = Field(True, description="check each connection before handing it out")

    HOLD_MAX_MS: int = Field(10_000, ge=0, description="upper bound of /items/hold")
    STATEMENT_TIMEOUT_MS: int = Field(30_000, ge=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> "Settings":
        if self.POOL_MIN_SIZE > self.POOL_MAX_SIZE:
            raise ValueError(
                f"POOL_MIN_SIZE ({self.POOL_MIN_SIZE}) must not exceed POOL_MAX_SIZE ({self.POOL_MAX_SIZE})"
            )
        return self
