"""Provider contract suite: every `Synthesizer` behaves the same through `stream`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode, mulaw_encode, rms_dbfs
from ringline.contracts.messages import SAMPLE_RATE
from ringline.services.tts.fallback import FallbackSynthesizer
from ringline.services.tts.piper_provider import PiperSynthesizer
from ringline.services.tts.piper_voice import PiperSynth, SynthCancel
from ringline.services.tts.provider import SynthCapabilities, SynthesisError, Synthesizer, build_synthesizer
from ringline.services.tts.settings import TtsSettings

pytestmark = pytest.mark.integration

LONG = " ".join(f"This is sentence number {n} of a rather long answer." for n in range(1, 9))


class ToneSynthesizer(Synthesizer):
    """A fake provider: 60 ms of a 440 Hz tone per character, in one blob per word."""

    name = "tone"
    capabilities = SynthCapabilities(streaming=True, cancel=True)

    async def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        if "explode" in text:
            raise RuntimeError("provider down")
        for word in text.split():
            t = np.arange(int(SAMPLE_RATE * 0.06 * len(word))) / SAMPLE_RATE
            yield mulaw_encode((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16))
            await asyncio.sleep(0)


@pytest.fixture(params=["piper", "tone"])
async def synthesizer(request: pytest.FixtureRequest, piper_synth: PiperSynth) -> AsyncIterator[Synthesizer]:
    synth: Synthesizer = (
        PiperSynthesizer(synth=piper_synth, piece_ms=100) if request.param == "piper" else ToneSynthesizer(100)
    )
    await synth.start()
    yield synth
    await synth.aclose()


async def collect(synth: Synthesizer, text: str) -> list[bytes]:
    return [piece async for piece in synth.stream(text)]


async def test_stream_gives_bus_sized_pieces_of_audible_phone_audio(synthesizer: Synthesizer) -> None:
    pieces = await collect(synthesizer, "Hello there, how are you doing today?")
    assert pieces and all(0 < len(p) <= 800 for p in pieces)
    audio = b"".join(pieces)
    assert 1.0 < len(audio) / SAMPLE_RATE < 6.0
    assert rms_dbfs(mulaw_decode(audio)) > -35
    assert synthesizer.stats.first_audio_s and synthesizer.stats.audio_s > 1.0


async def test_blank_text_yields_nothing(synthesizer: Synthesizer) -> None:
    assert await collect(synthesizer, "  ") == []


async def test_capabilities_are_declared(synthesizer: Synthesizer) -> None:
    assert isinstance(synthesizer.capabilities, SynthCapabilities)
    assert synthesizer.name


async def test_closing_the_stream_early_frees_the_provider(synthesizer: Synthesizer) -> None:
    async with aclosing(synthesizer.stream(LONG)) as pieces:
        async for _ in pieces:
            break
    started = time.perf_counter()
    assert await collect(synthesizer, "Next.")
    assert time.perf_counter() - started < 1.0


async def test_provider_failures_surface_as_synthesis_error() -> None:
    synth = ToneSynthesizer()
    with pytest.raises(SynthesisError, match="provider down") as caught:
        await collect(synth, "please explode")
    assert caught.value.provider == "tone" and synth.stats.failures == 1


class CountingSynth:
    """Wraps the real voice to count the sentences the worker actually synthesized."""

    def __init__(self, inner: PiperSynth) -> None:
        self.inner = inner
        self.sentences = 0

    @property
    def sample_rate(self) -> int:
        return self.inner.sample_rate

    def synthesize(self, text: str, cancel: SynthCancel | None = None) -> Iterator[np.ndarray]:
        for pcm in self.inner.synthesize(text, cancel):
            self.sentences += 1
            yield pcm


async def test_piper_stops_its_worker_job_when_the_stream_is_closed(piper_synth: PiperSynth) -> None:
    counting = CountingSynth(piper_synth)
    synth = PiperSynthesizer(synth=counting, warmup_text="")  # type: ignore[arg-type]
    await synth.start()
    try:
        async with aclosing(synth.stream(LONG)) as pieces:
            async for _ in pieces:
                break
        await collect(synth, "Done.")  # runs after the cancelled job on the one worker thread
        assert counting.sentences <= 3 + 1  # not all 8 sentences of LONG (+1 for "Done.")
    finally:
        await synth.aclose()


async def test_without_a_cartesia_key_piper_speaks_and_loads_its_voice_on_start_not_before() -> None:
    synth = build_synthesizer(TtsSettings(threads=1, cartesia_api_key=None))
    assert isinstance(synth, FallbackSynthesizer) and [link.synth.name for link in synth.links] == ["piper"]
    with pytest.raises(SynthesisError, match="not loaded"):
        await collect(synth, "Too early.")
    await synth.start()
    try:
        assert synth.apology and len(synth.apology) > SAMPLE_RATE  # the apology line, rendered at start
        assert await collect(synth, "Now it works.")
    finally:
        await synth.aclose()
