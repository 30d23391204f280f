"""Typed settings shared by every service. Each service subclasses with its own env prefix."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr
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
    # NATS credentials: unset, the connection is anonymous (a server without authorization).
    nats_user: str | None = Field(
        default=None, validation_alias=AliasChoices("NATS_USER", "RINGLINE_NATS_USER"),
        description="NATS user of this service (its grants: contracts/runtime/permissions.py)")
    nats_password: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NATS_PASSWORD", "RINGLINE_NATS_PASSWORD"),
        description="password of nats_user")
    nats_creds: Path | None = Field(default=None, validation_alias=AliasChoices("NATS_CREDS", "RINGLINE_NATS_CREDS"),
                                    description="a .creds file (JWT + nkey seed) instead of a user and password")
    nats_nkey_seed: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("NATS_NKEY_SEED", "RINGLINE_NATS_NKEY_SEED"),
        description="an nkey seed (SU...) instead of a user and password")
    nats_tls_ca: Path | None = Field(default=None, validation_alias=AliasChoices("NATS_TLS_CA", "RINGLINE_NATS_TLS_CA"),
                                     description="CA bundle that signed the NATS server's certificate (turns TLS on)")
    nats_tls_cert: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TLS_CERT", "RINGLINE_NATS_TLS_CERT"),
        description="client certificate for NATS servers that verify clients (with nats_tls_key)")
    nats_tls_key: Path | None = Field(
        default=None, validation_alias=AliasChoices("NATS_TLS_KEY", "RINGLINE_NATS_TLS_KEY"),
        description="private key of nats_tls_cert")
    host: str = Field(default="127.0.0.1", description="bind address of the HTTP/health endpoint")
    port: int = Field(default=0, ge=0, le=65535, description="health/HTTP port; 0 picks a free one")
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR")
    otlp_endpoint: str | None = Field(
        default=None,
        validation_alias=AliasChoices("OTEL_EXPORTER_OTLP_ENDPOINT"),
        description="export traces over OTLP/HTTP (e.g. Jaeger at http://jaeger:4318)",
    )
    drain_timeout_s: float = Field(default=10.0, gt=0, description="seconds to finish work on SIGTERM")
    replica_id: str = Field(
        default_factory=lambda: os.environ.get("POD_NAME") or f"{socket.gethostname()}:{os.getpid()}",
        description="this replica's name on leases and call records (the pod name on Kubernetes, host:pid locally)",
    )
    lease_ttl_s: float = Field(default=2.0, gt=0.2, le=60,
                               description="a call's lease lapses this long after its owner last renewed it")
    lease_renew_s: float = Field(default=0.5, gt=0.05, le=20,
                                 description="how often an owner renews its leases (keep below a third of the TTL)")
    claim_scan_s: float = Field(default=0.25, gt=0.02, le=10,
                                description="how often a replica looks for live calls its stage has no owner for")
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
