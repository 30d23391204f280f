"""Memory service settings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class MemorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_MEMORY_", extra="ignore")

    port: int = 8084
    calls_bucket: str = "ringline_calls"
    max_events_per_call: int = Field(default=500, ge=0)
