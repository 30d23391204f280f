"""The fallback chain: Cartesia, then Piper, then a pre-rendered apology, switched within a turn.

`FallbackSynthesizer` is a `Synthesizer` over an ordered list of `Link`s. Each chunk goes to the
first link still in play, through that link's `TurnVoice` for the turn (Cartesia keeps one
context for all the chunks it speaks); when that provider fails on it (an error, or no first audio within the
link's `first_audio_timeout_s`) the next link speaks the *same* chunk, and the rest of the turn
stays with it (`FallbackTurn` is sticky: a provider that just failed is not asked again mid-turn,
where every retry would cost the caller another wait; its turn voice is closed at once). A
provider that failed after some of the chunk's audio went out gets the chunk re-spoken in full by
the next one: the caller hears the sentence start again rather than lose its end.

After a 429 (or a refused key) the provider is not asked at all for `cooldown_s`, across every
call of this replica. When no voice can speak a chunk, the apology line (rendered with Piper at
`start()`, kept in memory: nothing binary ships in git) is played instead, once per turn, and the
chunk still fails with `SynthesisError`, so the session reports that its text was not heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, replace

from ringline.contracts.messages import SAMPLE_RATE

from .provider import ChunkSpeech, Fallback, SynthCapabilities, SynthesisError, Synthesizer, TurnSpeech, TurnVoice

log = logging.getLogger("ringline.tts.fallback")

PRERENDERED = "prerendered"
"""The provider name of the apology line in records and traces."""
NONE = "none"

_COOLDOWN_REASONS = frozenset({"rate_limited", "auth"})


@dataclass(frozen=True)
class Link:
    synth: Synthesizer
    first_audio_timeout_s: float | None = None
    """Asking for a chunk (connecting included) -> its first audio, or the next link speaks it.
    None: wait as long as it takes."""


class FirstAudioTimeout(TimeoutError):
    reason = "timeout"


class _Shared:
    """What every call's view of one chain shares: cooldowns and the apology audio."""

    def __init__(self, cooldown_s: float, clock: Callable[[], float]) -> None:
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.cooling_until: dict[str, float] = {}
        self.apology: bytes | None = None

    def cooling(self, provider: str) -> float:
        """Seconds left of the provider's cooldown (0: ask it)."""
        return max(0.0, self.cooling_until.get(provider, 0.0) - self.clock())

    def failed(self, provider: str, reason: str) -> None:
        if reason in _COOLDOWN_REASONS and self.cooldown_s > 0:
            self.cooling_until[provider] = self.clock() + self.cooldown_s
            log.warning("%s cools down for %.0f s (%s)", provider, self.cooldown_s, reason)


class FallbackSynthesizer(Synthesizer):
    name = "fallback"
    capabilities = SynthCapabilities(streaming=True, cancel=True)

    def __init__(self, links: Sequence[Link], apology_text: str = "", apology_voice: Synthesizer | None = None,
                 cooldown_s: float = 30.0, piece_ms: int = 100, clock: Callable[[], float] = time.monotonic,
                 _shared: _Shared | None = None) -> None:
        super().__init__(piece_ms)
        if not links:
            raise ValueError("a fallback chain needs at least one synthesizer")
        self.links = list(links)
        self.apology_text = apology_text
        self.apology_voice = apology_voice
        self._shared = _shared or _Shared(cooldown_s, clock)

    @property
    def apology(self) -> bytes | None:
        """The apology line as 8 kHz mu-law (None until `start()`, or when it could not be made)."""
        return self._shared.apology

    async def start(self) -> None:
        """Start every voice (one that fails to is logged and skipped, unless none starts), then
        render the apology line."""
        failures: list[Exception] = []
        for synth in self._members():
            try:
                await synth.start()
            except Exception as exc:
                log.error("%s did not start; the chain goes on without it: %s", synth.name, exc)
                failures.append(exc)
        if len(failures) == len(self._members()):
            raise failures[0]
        self._shared.apology = await self._render_apology()

    async def aclose(self) -> None:
        for synth in reversed(self._members()):
            try:
                await synth.aclose()
            except Exception:
                log.warning("closing %s failed", synth.name, exc_info=True)

    def for_call(self, custom: Mapping[str, str]) -> Synthesizer:
        links = [replace(link, synth=link.synth.for_call(custom)) for link in self.links]
        if all(new.synth is old.synth for new, old in zip(links, self.links, strict=True)):
            return self
        view = FallbackSynthesizer(links, self.apology_text, self.apology_voice, _shared=self._shared)
        view.piece_bytes, view.stats = self.piece_bytes, self.stats
        return view

    def begin_turn(self) -> FallbackTurn:
        return FallbackTurn(self)

    async def _stream_impl(self, text: str) -> AsyncGenerator[bytes, None]:
        turn = FallbackTurn(self)  # a turn of one chunk
        try:
            async with aclosing(turn.stream(text, final=True)) as pieces:
                async for piece in pieces:
                    yield piece
        finally:
            await turn.aclose()

    def _members(self) -> list[Synthesizer]:
        members: list[Synthesizer] = []
        for synth in [link.synth for link in self.links] + [self.apology_voice]:
            if synth is not None and all(synth is not m for m in members):
                members.append(synth)
        return members

    async def _render_apology(self) -> bytes | None:
        if self.apology_voice is None or not self.apology_text.strip():
            log.warning("no apology line: a chunk no voice can speak is reported, not apologised for")
            return None
        try:
            audio = b"".join([piece async for piece in self.apology_voice.stream(self.apology_text)])
        except SynthesisError as exc:
            log.error("the apology line could not be rendered: %s", exc)
            return None
        log.info("apology line ready: %.1f s of audio", len(audio) / SAMPLE_RATE)
        return audio or None


class FallbackTurn(TurnSpeech):
    """One turn through the chain: each chunk from the first link still in play."""

    def __init__(self, chain: FallbackSynthesizer) -> None:
        super().__init__(chain)
        self.chain = chain
        self._first = 0  # the link to try first; a failure moves it on for the rest of the turn
        self._apologized = False
        self._voices: dict[int, TurnVoice] = {}  # link index -> its voice for this turn

    async def aclose(self) -> None:
        voices, self._voices = list(self._voices.values()), {}
        for voice in voices:
            await voice.aclose()

    def _link_voice(self, index: int) -> TurnVoice:
        if index not in self._voices:
            self._voices[index] = self.chain.links[index].synth.turn_voice()
        return self._voices[index]

    async def _drop_voice(self, index: int) -> None:
        voice = self._voices.pop(index, None)
        if voice is not None:
            await voice.aclose()

    async def _stream(self, chunk: ChunkSpeech, final: bool) -> AsyncGenerator[bytes, None]:
        if not chunk.text.strip():
            return
        links, shared = self.chain.links, self.chain._shared
        failure: SynthesisError | None = None
        for index in range(self._first, len(links)):
            link, last = links[index], index == len(links) - 1
            name = link.synth.name
            following = self._next_name(index)
            if not last and (left := shared.cooling(name)):
                chunk.fallbacks.append(Fallback(name, following, "cooldown", f"not asked for another {left:.0f} s"))
                self._first = index + 1
                continue
            produced = 0
            try:
                speaking = _first_audio_within(link, self._link_voice(index).speak(chunk.text, final), chunk.text)
                async with aclosing(speaking) as pieces:
                    async for piece in pieces:
                        self._spoken_by(chunk, name)
                        produced += len(piece)
                        yield piece
                return
            except SynthesisError as exc:
                failure = exc
                reason = _reason(exc)
                shared.failed(name, reason)
                chunk.fallbacks.append(Fallback(name, following, reason, str(exc.cause),
                                                round(produced * 1000 / SAMPLE_RATE, 1)))
                log.warning("chunk %d: %s failed (%s), %s speaks it: %s", chunk.seq, name, reason, following,
                            exc.cause)
                self._first = min(index + 1, len(links) - 1)
                if index != self._first:
                    await self._drop_voice(index)  # not asked again this turn
        if self._can_apologise():
            self._apologized = True
            self.provider = chunk.provider = chunk.instead = PRERENDERED
            apology = self.chain.apology or b""
            for start in range(0, len(apology), self.chain.piece_bytes):
                yield apology[start : start + self.chain.piece_bytes]
        raise failure or SynthesisError(self.chain.name, chunk.text, RuntimeError("no voice to speak with"))

    def _preference(self) -> list[str]:
        return [link.synth.name for link in self.chain.links]

    def _next_name(self, index: int) -> str:
        if index + 1 < len(self.chain.links):
            return self.chain.links[index + 1].synth.name
        return PRERENDERED if self._can_apologise() else NONE

    def _can_apologise(self) -> bool:
        return bool(self.chain.apology) and not self._apologized


async def _first_audio_within(link: Link, stream: AsyncGenerator[bytes, None],
                              text: str) -> AsyncGenerator[bytes, None]:
    """The link's `stream` of `text`, failing with `SynthesisError` when its first audio is late."""
    async with aclosing(stream):
        limit = link.first_audio_timeout_s
        if limit is None:
            async for piece in stream:
                yield piece
            return
        try:
            async with asyncio.timeout(limit):
                first = await anext(stream, None)
        except TimeoutError as exc:
            link.synth.abandon()
            cause = FirstAudioTimeout(f"no audio within {limit * 1000:.0f} ms")
            raise SynthesisError(link.synth.name, text, cause) from exc
        if first is None:
            return
        yield first
        async for piece in stream:
            yield piece


def _reason(exc: SynthesisError) -> str:
    reason = getattr(exc.cause, "reason", None)
    if isinstance(reason, str) and reason:
        return reason
    return "timeout" if isinstance(exc.cause, TimeoutError) else "error"
