"""Typed settings of the telephony edge (env prefix `RINGLINE_TELEPHONY_`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


class TelephonySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_TELEPHONY_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    public_url: str | None = Field(
        default=None,
        description="Base URL Twilio reaches (https://abc.ngrok.app). Signatures are checked "
        "against it, never against the Host header. Default: http://<host>:<port>.",
    )
    twilio_auth_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid"),
        description="with TWILIO_AUTH_TOKEN: hang-ups, transfers and outbound calls go through Twilio's REST API",
    )
    twilio_api_url: str | None = Field(
        default=None, description="base URL of Twilio's REST API (default https://api.twilio.com; tests point it "
        "at a local server)",
    )
    twilio_api_timeout_s: float = Field(default=5.0, gt=0, description="timeout of one Twilio REST request")
    default_agent: str = Field(default="default", description="the agent of every call when no agents file is set")
    api_token: SecretStr | None = Field(
        default=None, description="bearer token of `POST /calls` (outbound calls); unset: the endpoint is disabled",
    )
    outbound_from: str | None = Field(
        default=None, description="caller ID of outbound calls whose agent lists no number of its own",
    )
    outbound_bucket: str = Field(
        default="ringline_outbound", description="JetStream KV bucket of outbound calls' context (purpose, agent)",
    )
    outbound_ttl_s: float = Field(
        default=86400.0, gt=0, description="how long an outbound call's context is kept for its answer",
    )
    ended_bucket: str = Field(
        default="ringline-edge-ended", description="JetStream KV bucket of calls that are over: their "
        "`<Connect action>` request is answered `<Hangup/>`, any other call's reconnects (failover)",
    )
    ended_ttl_s: float = Field(default=3600.0, gt=0, description="how long an ended call is remembered there")
    drain_deadline_s: float = Field(
        default=25.0, ge=0, description="on SIGTERM the edge turns unready and serves its calls this long; then "
        "it ends their streams and Twilio reconnects them to another replica (keep the pod's grace period longer)",
    )
    busy_line: str = Field(
        default="Sorry, all our lines are busy right now. Please call again in a few minutes. Goodbye.",
        description="what a caller hears when no replica of a stage has room for the call (rendered at start-up "
        "with the local Piper voice); then the call ends",
    )
    busy_grace_s: float = Field(
        default=0.5, ge=0, description="after a stage refuses a call, how long another replica of it has to claim "
        "it before the caller hears the busy line",
    )
    web_token: SecretStr | None = Field(
        default=None, description="token of the browser softphone (`/phone`) and the dashboard (`/dashboard`); "
        "required when the edge is reachable beyond this machine (public_url or host not loopback): without "
        "it those pages are refused there",
    )
    jaeger_ui_url: str | None = Field(
        default=None, description="base URL of the Jaeger UI (http://localhost:16686): the dashboard links each "
        "call's trace there",
    )
    dashboard_live_window_s: float = Field(
        default=3600.0, gt=0, description="a call the memory service still holds open is listed as live on a "
        "freshly started edge only if it began within this many seconds",
    )
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    max_malformed: int = Field(default=20, ge=1, description="bad messages a call may send before it is closed")
    max_buffered_frames: int = Field(
        default=500, ge=1, description="media frames kept while waiting for `start` (20 ms each)"
    )

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"public_url {value!r} must look like https://host[:port][/prefix]")
        if parts.query or parts.fragment:
            raise ValueError(f"public_url {value!r} must not carry a query or fragment")
        return value

    @property
    def base_url(self) -> str:
        """The public base URL, without a trailing slash."""
        if self.public_url:
            return self.public_url
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return f"http://{host}:{self.port}"

    @property
    def ws_base_url(self) -> str:
        """The public base URL as a WebSocket URL (wss:// for https://, ws:// for http://)."""
        base = self.base_url
        return "wss://" + base[len("https://"):] if base.startswith("https://") else "ws://" + base[len("http://"):]
