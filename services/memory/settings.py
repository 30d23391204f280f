"""Memory service settings."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class MemorySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_MEMORY_", extra="ignore")

    port: int = 8084
    calls_bucket: str = Field(default="ringline_calls", description="JetStream KV bucket of call records")
    kv_replicas: int = Field(default=1, ge=1, le=5,
                             description="JetStream replicas of the bucket (3 on a NATS cluster)")
    spend_bucket: str = Field(default="ringline_spend", description="JetStream KV bucket of spend per agent per day")
    live_bucket: str = Field(default="ringline_live", description="JetStream KV bucket of calls in progress per agent")
    live_ttl_s: float = Field(default=60.0, ge=3,
                              description="a live call not renewed this long (its replica died) stops counting")
    audio_bucket: str = Field(default="ringline_audio",
                              description="JetStream object store of voicemail and call audio")
    prices_file: str | None = Field(
        default=None, validation_alias=AliasChoices("RINGLINE_PRICES_FILE"),
        description="JSON/YAML price table overriding the defaults (see contracts/pricing.py)")
    prices_json: str | None = Field(default=None, validation_alias=AliasChoices("RINGLINE_PRICES"),
                                    description="price overrides as inline JSON, applied after the file")
    redact_pii: bool = Field(default=False, description="keep call records with card numbers, email addresses and "
                             "phone numbers in the turns' text replaced by [card], [email], [phone]")
    mask_caller_numbers: bool = Field(default=False, description="keep call records with the caller's number cut "
                                      "to its last four digits (number search and reports then see only those)")
    retention_days: float = Field(default=0.0, ge=0, description="delete call records, voicemail and recordings "
                                  "this many days after the call (0: keep them)")
    retention_sweep_s: float = Field(default=3600.0, gt=0, description="how often retention looks for old calls")
    max_events_per_call: int = Field(default=500, ge=0, description="events kept on one call record")
    summary_wait_s: float = Field(default=20.0, ge=0,
                                  description="how long after a call to wait for the brain's summary before reporting")
    report_urls: str = Field(default="",
                             description="comma-separated webhooks for every call's report, besides the agents' own")
    report_secret: SecretStr | None = Field(default=None, description="HMAC-SHA256 key of the reports to report_urls")
    report_retry_s: tuple[float, ...] = Field(default=(1.0, 4.0, 16.0),
                                              description="waits before each retry of a failed report (JSON list)")
    report_timeout_s: float = Field(default=10.0, gt=0, description="timeout of one report POST")

    @property
    def report_url_list(self) -> list[str]:
        return [url.strip() for url in self.report_urls.split(",") if url.strip()]
