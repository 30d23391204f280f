"""Typed settings of the telephony edge (env prefix `RINGLINE_TELEPHONY_`)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

_WILDCARD_HOSTS = {"0.0.0.0", "::", ""}


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    hold_line: str = Field(
        default="One moment please, I'm connecting you.",
        description="what a caller hears when a stage has not claimed the call within hold_after_s (a replica "
        "still loading or restarting); rendered at start-up with the local Piper voice",
    )
    hold_after_s: float = Field(default=1.5, gt=0, description="seconds without every stage claiming a new call "
                                "before the caller hears the hold line")
    hold_give_up_s: float = Field(default=12.0, gt=0, description="seconds without every stage claiming a new call "
                                  "before the caller hears hold_sorry_line and the call ends")
    hold_sorry_line: str = Field(
        default="Sorry, we can't take your call right now. Please call again in a few minutes. Goodbye.",
        description="the apology when no replica of a stage claimed the call within hold_give_up_s",
    )
    resume_rewind_ms: float = Field(
        default=400.0, ge=0, description="a paused agent that goes on after a long pause plays this much of what "
        "the caller heard before the pause again")
    resume_rewind_after_ms: float = Field(
        default=1000.0, ge=0, description="a pause at least this long rewinds on resume; a shorter one (a "
        "backchannel) goes on exactly where it cut in")
    busy_grace_s: float = Field(
        default=0.5, ge=0, description="after a stage refuses a call, how long another replica of it has to claim "
        "it before the caller hears the busy line",
    )
    # -- security (issue 11): what the edge lets in, and how much of it
    env: str = Field(default="development", validation_alias=AliasChoices("RINGLINE_ENV", "RINGLINE_TELEPHONY_ENV"),
                     description="`production` makes the edge refuse to start without TWILIO_AUTH_TOKEN, like a "
                     "public_url that is not loopback does")
    stream_secret: SecretStr | None = Field(
        default=None, description="HMAC key of the per-call stream tokens (the same on every edge replica); "
        "default: derived from TWILIO_AUTH_TOKEN")
    stream_token_ttl_s: float = Field(default=120.0, gt=0, description="how long a stream token from the TwiML "
                                      "opens its call's stream")
    start_timeout_s: float = Field(default=5.0, gt=0, description="a socket that has not sent `start` by then is "
                                   "closed")
    transfer_number: str | None = Field(
        default=None, description="where a transfer of a call whose agent names no transfer_number goes; a "
        "transfer target from the bus is never used")
    max_streams: int = Field(default=200, ge=1, description="concurrent Media Streams sockets on one edge replica")
    max_webhook_bytes: int = Field(default=16 * 1024, ge=1024, description="largest webhook body accepted")
    idle_timeout_s: float = Field(default=15.0, gt=0, description="a started stream that sends nothing this long "
                                  "is cut off (Twilio sends a frame every 20 ms)")
    caller_calls_per_minute: int = Field(default=10, ge=0, description="calls one caller number may start a "
                                         "minute on this replica (0: no limit)")
    agent_calls_per_minute: int = Field(default=120, ge=0, description="calls one agent may start a minute on "
                                        "this replica (0: no limit)")
    max_message_bytes: int = Field(default=64 * 1024, ge=1024)
    media_message_ms: int = Field(
        default=100, ge=20, le=1000, description="agent audio goes to Twilio in `media` messages of up to this "
        "many ms (whole 20 ms frames; Twilio plays them in real time whatever their size); 20: one message per "
        "frame, as before")
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

    def exposed_without_twilio_token(self) -> str | None:
        """Why this edge must not start as configured (it is public or in production and nothing
        checks Twilio's signatures), or None when it may."""
        if self.twilio_auth_token is not None and self.twilio_auth_token.get_secret_value():
            return None
        if self.env.strip().lower() == "production":
            return "RINGLINE_ENV is production"
        host = urlsplit(self.public_url).hostname if self.public_url else None
        if host is not None and not _is_loopback(host):
            return f"the public URL {self.public_url} is not loopback"
        return None

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
