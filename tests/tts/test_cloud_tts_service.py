"""The TTS service with Cartesia first and Piper behind it, on the in-memory broker: Cartesia is
the test double (tests/doubles/cartesia.py) with the real `cartesia` SDK as its client, Piper is
the real voice. What the phone side gets, what the call record gets, and what Cartesia was asked."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from ringline.contracts.messages import SAMPLE_RATE
from ringline.contracts.pricing import DEFAULT_PRICES, Usage, turn_cost
from ringline.services.tts.piper_provider import PiperSynthesizer
from ringline.services.tts.provider import build_synthesizer

from doubles.cartesia import CartesiaDouble, CartesiaFaults, encode, speech_like

pytestmark = pytest.mark.integration

SENTENCES = ["Sure, I can take a message.", "Who should I say is calling?", "And the best number to call back?"]


def cartesia_audio(text: str, ms_per_char: float = 65.0) -> bytes:
    """Exactly what the double sends for `text` (its voiced buzz), as 8 kHz mu-law."""
    return encode(speech_like(len(text.strip()) * ms_per_char / 1000, SAMPLE_RATE), "pcm_mulaw")


@pytest.fixture
async def cartesia() -> AsyncIterator[CartesiaDouble]:
    async with CartesiaDouble(faults=CartesiaFaults(latency_ms=100)) as double:
        yield double


@pytest.fixture
def service(make_harness: Callable[..., Any], piper: PiperSynthesizer, cartesia: CartesiaDouble,
            cloud: Any) -> Callable[..., Any]:
    """`async with service() as tts:` the TTS service with the Cartesia -> Piper chain."""

    @asynccontextmanager
    async def harness(**extra: Any) -> AsyncIterator[Any]:
        async with make_harness(build_synthesizer(cloud.settings(cartesia, **extra), local=piper)) as tts:
            yield tts

    return harness


async def test_a_turn_spoken_by_cartesia_is_its_raw_mulaw_with_a_mark_per_chunk_on_one_context(
        service, cartesia, cloud, wait_until) -> None:
    async with service() as tts:
        call = await tts.call()
        for seq, text in enumerate(SENTENCES):
            await call.say("t1", seq, text, final=seq == len(SENTENCES) - 1)
        await wait_until(lambda: call.finished("t1") and "tts.turn" in call.event_names())

    chunks = call.spoken("t1")
    assert [mark for mark, _, _ in chunks] == ["t1:0", "t1:1", "t1:2"]
    assert [audio for _, audio, _ in chunks] == [cartesia_audio(text) for text in SENTENCES]  # no resampling
    assert all(providers == {"cartesia"} for _, _, providers in chunks)
    audio = call.turn_audio("t1")
    assert [a.final for a in audio] == [False] * (len(audio) - 1) + [True]
    assert all(len(a.payload) <= SAMPLE_RATE // 10 for a in audio)

    report = call.event("tts.turn", "t1")
    assert report.data["provider"] == "cartesia" and report.data["providers"] == ["cartesia"] * 3
    assert report.data["fallbacks"] == []
    assert report.data["usage"] == {"tts_provider": "cartesia", "tts_characters": sum(map(len, SENTENCES))}
    cost = turn_cost(Usage.model_validate(report.data["usage"]), DEFAULT_PRICES)
    assert cost.tts > 0 and cost.unpriced == []  # the provider name is a key of the price table
    assert "tts.error" not in call.event_names()

    # Cartesia was asked for phone audio in the configured voice, on one context for the whole
    # turn: each chunk pushed as it came and flushed (its mark goes where its audio ends), the
    # final one closing the context; whole sentences, so no server-side buffering.
    ((context_id, _),) = cloud.asked(cartesia).items()
    requests = cartesia.connections[0].requests
    assert {r["context_id"] for r in requests} == {context_id}
    assert [(r["transcript"], r["continue"], r.get("flush", False)) for r in requests] == [
        (SENTENCES[0], True, False), ("", True, True),
        (" " + SENTENCES[1], True, False), ("", True, True),  # a space: Cartesia joins text verbatim
        (" " + SENTENCES[2], True, False), ("", False, False),
    ]
    assert all(r["max_buffer_delay_ms"] == 0 for r in requests if r["transcript"])
    first = requests[0]
    assert first["voice"] == {"id": "voice-1"} and first["model_id"] == "sonic-3"
    assert first["output_format"] == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}
    assert cartesia.connections[0].cancelled == []  # the turn ended with `done`, nothing to cancel


def _break(double: CartesiaDouble, fault: str) -> None:
    """From the next message (or context) on, Cartesia fails in the way named."""
    sent = len(double.connections[-1].sent)
    if fault in ("429", "500"):
        double.faults.context_error_status = int(fault)
        double.faults.context_error_count = 10**6
    elif fault == "stall":
        double.faults.stall_after = sent
    elif fault == "disconnect":
        double.faults.disconnect_after = sent


def _mend(double: CartesiaDouble) -> None:
    double.faults.context_error_status = double.faults.stall_after = double.faults.disconnect_after = None


@pytest.mark.parametrize(("fault", "reasons"), [
    ("429", {"rate_limited"}),
    ("500", {"unavailable"}),
    ("stall", {"timeout", "stalled"}),
    ("disconnect", {"disconnected"}),
])
async def test_cartesia_failing_mid_turn_hands_the_same_chunk_and_the_rest_to_piper(
        service, cartesia, cloud, wait_until, span_exporter, fault: str, reasons: set[str]) -> None:
    async with service() as tts:
        call = await tts.call()
        await call.say("t1", 0, SENTENCES[0])
        await wait_until(lambda: len(call.spoken("t1")) == 1)
        _break(cartesia, fault)
        await call.say("t1", 1, SENTENCES[1])
        await call.say("t1", 2, SENTENCES[2], final=True)
        await wait_until(lambda: call.finished("t1") and "tts.turn" in call.event_names())

        # Nothing lost: every chunk was spoken, in order, each ending with its mark.
        chunks = call.spoken("t1")
        assert [mark for mark, _, _ in chunks] == ["t1:0", "t1:1", "t1:2"]
        assert chunks[0][1] == cartesia_audio(SENTENCES[0]) and chunks[0][2] == {"cartesia"}
        for _, audio, providers in chunks[1:]:
            assert providers == {"piper"}
            assert 1.0 < len(audio) / SAMPLE_RATE < 4.5  # the whole sentence in the real voice
        assert "tts.error" not in call.event_names()

        report = call.event("tts.turn", "t1")
        assert report.data["providers"] == ["cartesia", "piper", "piper"]
        (fallback,) = report.data["fallbacks"]
        assert (fallback["seq"], fallback["from"], fallback["to"]) == (1, "cartesia", "piper")
        assert fallback["reason"] in reasons and fallback["after_audio_ms"] == 0
        # usage: the paid provider's characters; every provider's in `usages`
        assert report.data["usage"] == {"tts_provider": "cartesia", "tts_characters": len(SENTENCES[0])}
        assert report.data["usages"][1] == {"tts_provider": "piper",
                                            "tts_characters": len(SENTENCES[1]) + len(SENTENCES[2])}
        # sticky for the rest of the turn: Cartesia never saw the last chunk, and its context for
        # the turn is gone (cancelled, unless the failure ended it anyway)
        assert not any(SENTENCES[2].strip() in " ".join(texts) for texts in cloud.asked(cartesia).values())
        assert len(cloud.asked(cartesia)) == 1

        # the trace says it too
        spans = {s.attributes["chunk.seq"]: s for s in span_exporter.get_finished_spans() if s.name == "tts.chunk"}
        assert [spans[n].attributes["tts.provider"] for n in range(3)] == ["cartesia", "piper", "piper"]
        (event,) = spans[1].events
        assert event.name == "tts.fallback" and event.attributes["reason"] == fallback["reason"]

        # The next turn: after a 429 Cartesia cools down; otherwise it is asked again (afresh).
        _mend(cartesia)
        await call.say("t2", 0, "Thanks, got it.", final=True)
        await wait_until(lambda: call.finished("t2") and len([e for e in call.events if e.name == "tts.turn"]) == 2)
        again = call.event("tts.turn", "t2")
        if fault == "429":
            assert again.data["providers"] == ["piper"] and again.data["fallbacks"][0]["reason"] == "cooldown"
            assert not any("Thanks, got it." in texts for texts in cloud.asked(cartesia).values())
        else:
            assert again.data["providers"] == ["cartesia"] and again.data["fallbacks"] == []


async def test_a_chunk_cartesia_drops_halfway_is_spoken_again_in_full_by_piper(
        service, cartesia, cloud, wait_until) -> None:
    cartesia.faults.disconnect_after = 2  # two audio messages (0.2 s) of the chunk, then the line drops
    async with service() as tts:
        call = await tts.call()
        await call.say("t1", 0, SENTENCES[0], final=True)
        await wait_until(lambda: call.finished("t1") and "tts.turn" in call.event_names())

    ((mark, audio, providers),) = call.spoken("t1")
    assert mark == "t1:0" and providers == {"cartesia", "piper"}
    assert audio.startswith(cartesia_audio(SENTENCES[0])[:1600])  # what went out before the drop ...
    assert len(audio) > 1600 + SAMPLE_RATE  # ... then the whole sentence again
    (fallback,) = call.event("tts.turn", "t1").data["fallbacks"]
    assert fallback["reason"] == "disconnected" and fallback["after_audio_ms"] > 0


async def test_an_interrupt_between_chunks_cancels_the_turns_context_and_the_next_turn_gets_its_own(
        service, cartesia, cloud, wait_until) -> None:
    async with service() as tts:
        call = await tts.call()
        await call.say("t1", 0, SENTENCES[0])
        await wait_until(lambda: len(call.spoken("t1")) == 1)  # spoken; the LLM is still writing
        await call.control("interrupt", "t1")
        await wait_until(lambda: cartesia.connections[0].cancelled)
        await call.say("t1", 1, SENTENCES[1], final=True)  # too late: ignored
        await call.say("t2", 0, "Sorry, go ahead.", final=True)
        await wait_until(lambda: call.finished("t2"))

    first, second = cloud.asked(cartesia)
    assert cartesia.connections[0].cancelled == [first]
    assert cloud.asked(cartesia)[second] == ["Sorry, go ahead.", ""]
    assert not any(SENTENCES[1] in " ".join(texts) for texts in cloud.asked(cartesia).values())
    assert call.event("tts.turn", "t1").data["interrupted"] is True
