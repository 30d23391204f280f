"""Typed settings shared by every service. Each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Bus, health and telemetry settings. `NATS_URL` and `OTEL_EXPORTER_OTLP_ENDPOINT` are
    read without a prefix because every process (and the operator) shares them."""

    model_config = SettingsConfigDict(env_prefix="RINGLINE_", extra="ignore", populate_by_name=True)

    nats_url: str = Field(
        default="nats://127.0.0.1:4222",
        validation_alias=AliasChoices("NATS_URL", "RINGLINE_NATS_URL"),
        description="the NATS server every service connects to",
    )
    host: str = Field(default="127.0.0.1", description="bind address of the HTTP/health endpoint")
    port: int = Field(default=0, ge=0, le=65535, description="health/HTTP port; 0 picks a free one")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="export traces over OTLP/HTTP (e.g. Jaeger at http://jaeger:4318)",
    )
    drain_timeout_s: float = Field(default=10.0, gt=0, description="seconds to finish work on SIGTERM")
    agents_file: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("RINGLINE_AGENTS_FILE"),
        description="YAML file of agents (numbers, persona, voice, limits...); unset: one default agent",
    )
    max_calls: int = Field(
        default=100, ge=1,
        description="calls one replica of this stage owns at most; past it the replica refuses new calls "
        "(env RINGLINE_<SERVICE>_MAX_CALLS, e.g. RINGLINE_STT_MAX_CALLS)",
    )
    max_loop_lag_ms: float = Field(
        default=250.0, gt=0,
        description="a replica whose event loop runs later than this (smoothed) refuses new calls "
        "(env RINGLINE_<SERVICE>_MAX_LOOP_LAG_MS)",
    )
