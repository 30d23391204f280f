"""The TTS provider interface: text in, 8 kHz mu-law pieces out.

`Synthesizer.stream` is the template method every caller uses: it cuts audio into bus-sized
pieces, times first audio and real-time factor, and turns provider failures into
`SynthesisError`. Implementations write only `_stream_impl` (one file per vendor) and declare
what they can do in `capabilities` instead of being told apart with `isinstance`.

Closing the stream early (breaking out of it inside `contextlib.aclosing`, or cancelling the
task that reads it) cancels the rest of the synthesis.

The session speaks a turn through `begin_turn()`: a `TurnSpeech` that streams each chunk and
remembers which provider spoke it, the fallbacks on the way and the characters each provider was
given (for the call's cost), and is closed when the turn is over (or dropped). Underneath, each
provider speaks the turn's chunks through its `TurnVoice`: by default every chunk on its own,
Cartesia with one context for the whole turn. The fallback chain (`fallback.py`) switches
provider within the turn.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ringline.contracts.messages import SAMPLE_RATE
from ringline.contracts.pricing import Usage

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

    def for_call(self, custom: Mapping[str, str]) -> Synthesizer:
        """This synthesizer as one call wants it (`CallStart.custom`, e.g. `tts_voice`); default: as is.
        The result shares this one's models and connections: start and close only this one."""
        return self

    def begin_turn(self) -> TurnSpeech:
        """A new agent turn: stream its chunks through the returned `TurnSpeech`."""
        return TurnSpeech(self)

    def turn_voice(self) -> TurnVoice:
        """This provider speaking one turn's chunks; default: each chunk as a `stream` of its own."""
        return TurnVoice(self)

    def abandon(self) -> None:
        """Someone stopped waiting for this synthesizer's first audio (a fallback deadline): drop
        whatever may be stuck, so that the next request starts afresh. Default: nothing."""

    def stream(self, text: str) -> AsyncGenerator[bytes, None]:
        """8 kHz mu-law of `text` in pieces of at most `piece_ms`, as soon as each is made.

        Empty or blank text yields nothing. Raises `SynthesisError` when the provider fails.
        """
        return self.measured(text, self._stream_impl)

    async def measured(self, text: str,
                       make: Callable[[str], AsyncGenerator[bytes, None]]) -> AsyncGenerator[bytes, None]:
        """The template around `make(text)`, any source of this provider's audio for `text`
        (`_stream_impl`, or a turn voice's): pieces, timing, stats, `SynthesisError`."""
        if not text.strip():
            return
        started = time.perf_counter()
        first_audio: float | None = None
        audio_bytes = 0
        self.stats.streams += 1
        try:
            async with aclosing(make(text)) as source:
                async for audio in source:
                    if first_audio is None and audio:
                        first_audio = time.perf_counter() - started
                        self.stats.first_audio_s.append(first_audio)
                    for start in range(0, len(audio), self.piece_bytes):
                        piece = audio[start : start + self.piece_bytes]
                        audio_bytes += len(piece)
                        yield piece
        except SynthesisError:  # already says which provider failed (a chain of synthesizers)
            self.stats.failures += 1
            raise
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
    def _stream_impl(self, text: str) -> AsyncGenerator[bytes, None]:
        """Yield 8 kHz mu-law audio of `text` in any sizes; stop work when closed early."""


class TurnVoice:
    """One provider speaking the chunks of one agent turn, in order: `speak` each chunk (`final`
    for the turn's last), `aclose()` once the turn is over or dropped. This default speaks every
    chunk on its own; a provider with turn-long state overrides it (Cartesia: one context a turn)."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth

    def speak(self, text: str, final: bool = False) -> AsyncGenerator[bytes, None]:
        """`text`'s audio, as `Synthesizer.stream` gives it; closing it early stops the work."""
        return self.synth.stream(text)

    async def aclose(self) -> None:
        """The turn is over: release what it holds (idempotent)."""


@dataclass
class Fallback:
    """One switch from a provider that failed on a chunk to the next one in the chain."""

    from_provider: str
    to_provider: str
    reason: str
    """Short and stable: "rate_limited", "unavailable", "timeout", "stalled", "disconnected", "cooldown"..."""
    error: str = ""
    after_audio_ms: float = 0.0
    """Audio the failing provider had already produced for the chunk (it is spoken again in full)."""
    at_ns: int = field(default_factory=time.time_ns)

    def as_dict(self, seq: int) -> dict[str, Any]:
        return {"seq": seq, "from": self.from_provider, "to": self.to_provider, "reason": self.reason,
                "error": self.error, "after_audio_ms": self.after_audio_ms}


@dataclass
class ChunkSpeech:
    """What became of one chunk: who spoke it and how we got there."""

    seq: int
    text: str
    provider: str = ""
    """The provider whose audio ends the chunk ("" when nothing was said)."""
    fallbacks: list[Fallback] = field(default_factory=list)
    instead: str = ""
    """What was played in place of the text when no voice could speak it (the apology line)."""


class TurnSpeech:
    """One agent turn through one synthesizer. `stream` each chunk in order, then `aclose()`;
    afterwards `chunks` says who spoke what and `characters` how much text each provider was given."""

    def __init__(self, synth: Synthesizer) -> None:
        self.synth = synth
        self.chunks: list[ChunkSpeech] = []
        self.characters: dict[str, int] = {}
        """Provider -> characters of the chunks it made audio for (what a cloud voice bills)."""
        self.provider = ""
        """The provider of the audio being streamed right now."""
        self._voice: TurnVoice | None = None

    def stream(self, text: str, seq: int = 0, final: bool = False) -> AsyncGenerator[bytes, None]:
        """The chunk's audio; `final`: the turn's last chunk (a voice may end the turn with it)."""
        chunk = ChunkSpeech(seq, text)
        self.chunks.append(chunk)
        return self._stream(chunk, final)

    async def aclose(self) -> None:
        """The turn is over (spoken, interrupted or abandoned): its voices let go of it."""
        voice, self._voice = self._voice, None
        if voice is not None:
            await voice.aclose()

    async def _stream(self, chunk: ChunkSpeech, final: bool) -> AsyncGenerator[bytes, None]:
        if self._voice is None:
            self._voice = self.synth.turn_voice()
        async with aclosing(self._voice.speak(chunk.text, final)) as pieces:
            async for piece in pieces:
                self._spoken_by(chunk, self.synth.name)
                yield piece

    def _spoken_by(self, chunk: ChunkSpeech, provider: str) -> None:
        """`provider` made (the first) audio of `chunk`."""
        self.provider = provider
        if chunk.provider != provider:
            chunk.provider = provider
            self.characters[provider] = self.characters.get(provider, 0) + len(chunk.text)

    def usages(self) -> list[Usage]:
        """One `Usage` per provider given text in this turn, the first choice first (in a chain
        ordered cloud-first, that is the provider that costs money)."""
        order = self._preference()
        names = sorted(self.characters, key=lambda n: order.index(n) if n in order else len(order))
        return [Usage(tts_provider=n, tts_characters=self.characters[n]) for n in names if self.characters[n]]

    def _preference(self) -> list[str]:
        return [self.synth.name]

    @property
    def fallbacks(self) -> list[dict[str, Any]]:
        return [f.as_dict(c.seq) for c in self.chunks for f in c.fallbacks]

    @property
    def first_provider(self) -> str:
        """Who spoke the turn's first audio (what the call record shows for the turn)."""
        return next((c.provider for c in self.chunks if c.provider), "")


def build_synthesizer(settings: TtsSettings, local: Synthesizer | None = None) -> Synthesizer:
    """The one provider switch: Cartesia (when chosen) then the local Piper voice, then the
    pre-rendered apology, as a `FallbackSynthesizer`. `local` replaces the Piper voice (tests)."""
    from .fallback import FallbackSynthesizer, Link
    from .piper_provider import PiperSynthesizer

    piper = local or PiperSynthesizer(
        model_path=settings.voice_model,
        threads=settings.threads,
        length_scale=settings.length_scale,
        piece_ms=settings.piece_ms,
        warmup_text=settings.warmup_text,
    )
    links = [Link(piper, settings.piper_first_audio_timeout_s)]
    if settings.use_cartesia:
        from .cartesia import CartesiaOptions, CartesiaSynthesizer

        key = settings.cartesia_api_key.get_secret_value() if settings.cartesia_api_key else ""
        cartesia = CartesiaSynthesizer(CartesiaOptions(
            api_key=key,
            voice_id=settings.cartesia_voice_id,
            model_id=settings.cartesia_model_id,
            language=settings.cartesia_language,
            websocket_base_url=settings.cartesia_websocket_url,
            connect_timeout_s=settings.cartesia_connect_timeout_s,
            first_audio_timeout_s=settings.cartesia_first_audio_timeout_s,
            stall_timeout_s=settings.cartesia_stall_timeout_s,
        ), piece_ms=settings.piece_ms)
        links.insert(0, Link(cartesia, settings.cartesia_first_audio_timeout_s))
    return FallbackSynthesizer(links, apology_text=settings.apology_text, apology_voice=piper,
                               cooldown_s=settings.cartesia_cooldown_s, piece_ms=settings.piece_ms)
