"""The speech recognizer interface of the stt stage.

`Recognizer.transcribe(pcm16_8k, hints)` is the public template method: it times the call, turns
failures into an empty result with `error` set (the session then reports `stt.empty` instead
of dying) and never raises except for cancellation. Implementations write `_transcribe_impl`
and declare what they can do in `capabilities`. `hints` (the agent's keyterms and the last
lines of the conversation, see `prompt`) are advice: an implementation may ignore them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from ringline.contracts.audio import rms_dbfs

from .prompt import NO_HINTS, Hints
from .settings import SttSettings
from .vad import SAMPLE_RATE

log = logging.getLogger("ringline.stt.recognizer")


@dataclass(frozen=True)
class Capabilities:
    streaming: bool = False
    """Accepts audio while the caller speaks (vs one call per finished utterance)."""
    interim: bool = False
    """Produces interim (non-final) text."""


@dataclass(frozen=True)
class Hypothesis:
    """What an implementation returns: text plus the confidence signals it has."""

    text: str
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    dropped: str = ""
    """Why the implementation discarded its output (e.g. "hallucination"); "" if it did not."""


@dataclass(frozen=True)
class RecognitionResult:
    text: str
    provider: str
    audio_s: float
    decode_s: float
    level_dbfs: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    dropped: str = ""
    error: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.text


class Recognizer(ABC):
    """One utterance of 8 kHz int16 PCM in, its text out."""

    name: str = "recognizer"
    capabilities: Capabilities = Capabilities()

    async def load(self) -> None:
        """Load models; called once at service start, never at import."""
        return None

    async def close(self) -> None:
        return None

    async def transcribe(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> RecognitionResult:
        pcm = np.asarray(pcm16_8k, dtype=np.int16).reshape(-1)
        audio_s = pcm.size / SAMPLE_RATE
        level = rms_dbfs(pcm)
        started = time.perf_counter()
        try:
            hyp = await self._transcribe_impl(pcm, hints)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("%s failed on %.2f s of audio", self.name, audio_s)
            return RecognitionResult(
                "", self.name, audio_s, time.perf_counter() - started, level, error=repr(exc)
            )
        return RecognitionResult(
            text=hyp.text.strip(),
            provider=self.name,
            audio_s=audio_s,
            decode_s=time.perf_counter() - started,
            level_dbfs=level,
            no_speech_prob=hyp.no_speech_prob,
            avg_logprob=hyp.avg_logprob,
            dropped=hyp.dropped,
        )

    @abstractmethod
    async def _transcribe_impl(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> Hypothesis: ...


def build_recognizer(settings: SttSettings) -> Recognizer:
    """The one provider switch. Builds only: models load in `Recognizer.load()`."""
    if settings.provider in ("whisper", "deepgram", "auto"):  # the local path (Deepgram's fallback too)
        from .whisper import WhisperOptions, WhisperRecognizer

        return WhisperRecognizer(WhisperOptions.from_settings(settings))
    raise ValueError(f"unknown stt provider {settings.provider!r}")
