"""Memory service settings."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class MemorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_MEMORY_", extra="ignore")

    port: int = 8084
    calls_bucket: str = Field(default="ringline_calls", description="JetStream KV bucket of call records")
    kv_replicas: int = Field(default=1, ge=1, le=5, description="JetStream replicas of the bucket (3 on a NATS cluster)")
    spend_bucket: str = Field(default="ringline_spend", description="JetStream KV bucket of spend per agent per day")
    prices_file: str | None = Field(default=None, validation_alias=AliasChoices("RINGLINE_PRICES_FILE"),
                                    description="JSON/YAML price table overriding the defaults (see contracts/pricing.py)")
    prices_json: str | None = Field(default=None, validation_alias=AliasChoices("RINGLINE_PRICES"),
                                    description="price overrides as inline JSON, applied after the file")
    max_events_per_call: int = Field(default=500, ge=0, description="events kept on one call record")
