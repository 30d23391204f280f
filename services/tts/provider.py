"""The TTS provider interface: text in, 8 kHz mu-law pieces out.

`Synthesizer.stream` is the template method every caller uses: it cuts audio into bus-sized
pieces, times first audio and real-time factor, and turns provider failures into
`SynthesisError`. Implementations write only `_stream_impl` (one file per vendor) and declare
what they can do in `capabilities` instead of being told apart with `isinstance`.

Closing the stream early (breaking out of it inside `contextlib.aclosing`, or cancelling the
task that reads it) cancels the rest of the synthesis.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from ringline.contracts.messages import SAMPLE_RATE

from .settings import TtsSettings

log = logging.getLogger("ringline.tts.provider")


@dataclass(frozen=True)
class SynthCapabilities:
    streaming: bool
    """Audio comes out before the whole text is synthesized (at least per sentence)."""
    cancel: bool
    """Closing the stream stops the work in progress, not only the delivery."""


class SynthesisError(RuntimeError):
    """A provider could not synthesize a text."""

    def __init__(self, provider: str, text: str, cause: BaseException) -> None:
        super().__init__(f"{provider} failed on {text[:60]!r}: {cause!r}")
        self.provider = provider
        self.cause = cause


@dataclass
class SynthStats:
    """Running totals of one synthesizer, for logs, benchmarks and health."""

    streams: int = 0
    failures: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    """Time from request to last piece, including time the reader spent between pieces."""
    first_audio_s: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    """The most recent first-audio latencies (request -> first piece)."""

    @property
    def real_time_factor(self) -> float:
        return self.wall_s / self.audio_s if self.audio_s else 0.0


class Synthesizer(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[SynthCapabilities]

    def __init__(self, piece_ms: int = 100) -> None:
        self.piece_bytes = max(1, SAMPLE_RATE * piece_ms // 1000)  # mu-law: one byte a sample
        self.stats = SynthStats()

    async def start(self) -> None:
        """Load models and warm up; called once at service start."""

    async def aclose(self) -> None:
        """Release models and threads; called once at service shutdown."""

    async def stream(self, text: str) -> AsyncIterator[bytes]:
        """8 kHz mu-law of `text` in pieces of at most `piece_ms`, as soon as each is made.

        Empty or blank text yields nothing. Raises `SynthesisError` when the provider fails.
        """
        if not text.strip():
            return
        started = time.perf_counter()
        first_audio: float | None = None
        audio_bytes = 0
        self.stats.streams += 1
        try:
            async for audio in self._stream_impl(text):
                if first_audio is None and audio:
                    first_audio = time.perf_counter() - started
                    self.stats.first_audio_s.append(first_audio)
                for start in range(0, len(audio), self.piece_bytes):
                    piece = audio[start : start + self.piece_bytes]
                    audio_bytes += len(piece)
                    yield piece
        except Exception as exc:
            self.stats.failures += 1
            raise SynthesisError(self.name, text, exc) from exc
        finally:
            audio_s = audio_bytes / SAMPLE_RATE
            self.stats.audio_s += audio_s
            self.stats.wall_s += time.perf_counter() - started
            log.debug(
                "%s: %d chars -> %.2f s audio, first audio %s ms",
                self.name, len(text), audio_s,
                f"{first_audio * 1000:.0f}" if first_audio is not None else "-",
            )

    @abstractmethod
    def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        """Yield 8 kHz mu-law audio of `text` in any sizes; stop work when closed early."""


def build_synthesizer(settings: TtsSettings) -> Synthesizer:
    """The one provider switch. Only the local Piper voice exists so far."""
    if settings.provider == "piper":
        from .piper_provider import PiperSynthesizer

        return PiperSynthesizer(
            model_path=settings.voice_model,
            threads=settings.threads,
            length_scale=settings.length_scale,
            piece_ms=settings.piece_ms,
            warmup_text=settings.warmup_text,
        )
    raise ValueError(f"unknown TTS provider {settings.provider!r}")
