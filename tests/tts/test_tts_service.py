"""The TTS service on the in-memory broker with the real Piper voice: what the phone side gets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace

from ringline.contracts.audio import mulaw_decode, rms_dbfs
from ringline.contracts.messages import SAMPLE_RATE, make_mark
from ringline.contracts.runtime import inject_headers
from ringline.services.tts.provider import SynthCapabilities, Synthesizer

pytestmark = pytest.mark.integration

LONG_TURN = (
    "Let me walk you through the options we have. First, I can take a message for the team. "
    "Second, I can transfer you to the front desk. Third, I can book a call back for tomorrow "
    "morning. Fourth, I can send you a text with our opening hours. Finally, I can simply "
    "answer your question right now if you tell me what it is."
)


def seconds(payloads: list[bytes]) -> float:
    return sum(len(p) for p in payloads) / SAMPLE_RATE


async def test_chunks_are_spoken_in_seq_order_even_when_published_out_of_order(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 2, "And that is the third part.", final=True)
    await call.say("t1", 0, "This is the first part.")
    await call.say("t1", 1, "Here comes the second part.")
    await wait_until(lambda: call.finished("t1"))

    audio = call.turn_audio("t1")
    assert [a.seq for a in audio] == list(range(len(audio)))
    assert [a.mark for a in audio if a.mark] == [make_mark("t1", 0), make_mark("t1", 1), make_mark("t1", 2)]
    assert [a.final for a in audio] == [False] * (len(audio) - 1) + [True]
    # Each chunk's audio (up to its mark) is a plausible length of real speech.
    pieces: list[bytes] = []
    for a in audio:
        pieces.append(a.payload)
        if a.mark:
            assert 0.8 < seconds(pieces) < 4.0
            assert rms_dbfs(mulaw_decode(b"".join(pieces))) > -35
            pieces = []


async def test_every_piece_is_phone_sized_and_carries_the_turn_timing(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, "Thanks for calling. How can I help you today?", final=True)
    await wait_until(lambda: call.finished("t1"))

    audio = call.turn_audio("t1")
    assert all(0 < len(a.payload) <= SAMPLE_RATE // 10 for a in audio)  # 100 ms pieces
    assert [a.mark for a in audio].count(make_mark("t1", 0)) == 1 and audio[-1].mark == make_mark("t1", 0)
    first, last = audio[0].timing, audio[-1].timing
    assert first.tts_provider == "piper" and first.tts_started_at > 0
    assert first.first_audio_at >= first.tts_started_at
    assert last.first_audio_at == first.first_audio_at  # the turn's first audio, on every piece
    await wait_until(lambda: "tts.turn" in call.event_names())
    metrics = next(e for e in call.events if e.name == "tts.turn")
    assert metrics.turn_id == "t1" and metrics.data["chunks"] == 1 and metrics.data["audio_ms"] > 1000
    assert metrics.timing is not None and metrics.timing.first_audio_at == first.first_audio_at


async def test_an_empty_final_chunk_still_ends_the_turn_with_its_mark(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, "Goodbye for now.")
    await call.say("t1", 1, "", final=True)
    await wait_until(lambda: call.finished("t1"))

    audio = call.turn_audio("t1")
    end = audio[-1]
    assert end.final and end.mark == make_mark("t1", 1) and end.payload == b""
    assert audio[-2].mark == make_mark("t1", 0) and audio[-2].payload


async def test_a_turn_that_is_only_an_empty_final_chunk_yields_the_final_marker(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, "", final=True)
    await wait_until(lambda: call.finished("t1"))

    assert [(a.seq, a.payload, a.mark, a.final) for a in call.turn_audio("t1")] == [
        (0, b"", make_mark("t1", 0), True)
    ]


async def test_interrupt_mid_turn_stops_its_audio_and_later_turns_still_play(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, LONG_TURN)
    await call.say("t1", 1, "And one more thing before you go.", final=True)
    await wait_until(lambda: len(call.turn_audio("t1")) >= 3)

    await call.control("interrupt", "t1")
    heard = len(call.turn_audio("t1"))
    await call.say("t1", 2, "A late chunk of the interrupted turn.")  # ignored too
    await asyncio.sleep(1.5)  # far longer than Piper needs for the next sentence

    audio = call.turn_audio("t1")
    assert len(audio) == heard
    assert not any(a.final for a in audio)
    assert seconds([a.payload for a in audio]) < 10.0  # the long turn (~15 s of speech) was cut

    await call.say("t2", 0, "Sure, go ahead.", final=True)
    await wait_until(lambda: call.finished("t2"))
    assert len(call.turn_audio("t1")) == heard


async def test_turns_are_spoken_in_arrival_order(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("b", 0, "The second turn.", final=True)  # arrives first, so it plays first
    await call.say("a", 0, "The first turn.", final=True)
    await wait_until(lambda: call.finished("a") and call.finished("b"))

    order = [a.turn_id for a in call.audio]
    assert order == sorted(order, key=["b", "a"].index)


async def test_hangup_stops_everything_for_the_call(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, LONG_TURN, final=True)
    await wait_until(lambda: len(call.audio) >= 1)

    await call.control("hangup")
    count = len(call.audio)
    await call.say("t2", 0, "Anyone there?", final=True)
    await asyncio.sleep(1.0)
    assert len(call.audio) == count
    assert not any(a.final for a in call.audio)


async def test_calls_are_independent(tts, wait_until) -> None:
    one, two = await tts.call("call-1"), await tts.call("call-2")
    await one.say("t1", 0, "Hello caller one.", final=True)
    await two.say("t1", 0, "Hello caller two.", final=True)
    await one.control("interrupt", "t1")
    await wait_until(lambda: two.finished("t1"))
    assert {a.call_id for a in two.audio} == {"call-2"}
    assert not one.finished("t1")


class _FailsOnBoom(Synthesizer):
    """A provider that breaks on one text and speaks a short tone otherwise."""

    name = "fake"
    capabilities = SynthCapabilities(streaming=False, cancel=False)

    async def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        if "boom" in text:
            raise RuntimeError("voice exploded")
        yield bytes([0x10, 0x90]) * 800  # 0.2 s of a loud square wave
        if "half" in text:
            raise RuntimeError("voice gave out mid-sentence")


async def test_a_failed_chunk_is_reported_and_the_call_carries_on(make_harness, wait_until) -> None:
    async with make_harness(_FailsOnBoom()) as tts:
        call = await tts.call()
        await call.say("t1", 0, "Fine.")
        await call.say("t1", 1, "boom", final=True)
        await call.say("t2", 0, "Still here.", final=True)
        await wait_until(lambda: call.finished("t2"))

        errors = [e for e in call.events if e.name == "tts.error"]
        assert len(errors) == 1 and errors[0].turn_id == "t1" and errors[0].data["seq"] == 1
        assert "voice exploded" in errors[0].data["error"]
        assert call.finished("t1")  # the turn still ends, so nobody waits for it forever
        assert [a.mark for a in call.turn_audio("t1") if a.mark] == ["t1:0", "t1:1"]
        # ... but the error names that mark: its echo will not mean "boom" was heard
        assert errors[0].data["mark"] == "t1:1" and errors[0].data["audio_ms"] == 0
        assert errors[0].data["text"] == "boom"
        assert call.turn_audio("t2")[0].payload


async def test_a_chunk_failing_midway_names_its_mark_and_the_audio_that_went_out(make_harness, wait_until) -> None:
    async with make_harness(_FailsOnBoom()) as tts:
        call = await tts.call()
        await call.say("t1", 0, "half a sentence", final=True)
        await wait_until(lambda: call.finished("t1"))
        (error,) = [e for e in call.events if e.name == "tts.error"]
        assert error.data["mark"] == "t1:0" and error.data["audio_ms"] == 200.0
        assert sum(len(a.payload) for a in call.turn_audio("t1")) == 1600  # the 0.2 s that was made


async def test_an_interrupt_before_the_turn_arrives_keeps_it_silent(tts, wait_until) -> None:
    call = await tts.call()
    await call.control("interrupt", "t1")  # the brain gave the turn up before TTS saw any of it
    await call.say("t1", 0, "You should never hear this.", final=True)
    await call.say("t2", 0, "But this, yes.", final=True)
    await wait_until(lambda: call.finished("t2"))
    assert call.turn_audio("t1") == []
    assert [e.turn_id for e in call.events if e.name in ("tts.turn", "tts.error")] == ["t2"]


async def test_an_interrupted_turn_publishes_no_audio_afterwards_only_its_usage(tts, wait_until) -> None:
    call = await tts.call()
    await call.say("t1", 0, LONG_TURN, final=True)
    await wait_until(lambda: len(call.turn_audio("t1")) >= 1)
    await call.control("interrupt", "t1")
    audio_at_interrupt = len(call.turn_audio("t1"))
    events_at_interrupt = len(call.events)
    await asyncio.sleep(1.0)
    assert len(call.turn_audio("t1")) == audio_at_interrupt
    assert not any(a.final for a in call.turn_audio("t1"))
    # what the voice was given is on the record (a cloud voice bills it), marked as interrupted
    (report,) = [e for e in call.events[events_at_interrupt:] if e.turn_id == "t1"]
    assert report.name == "tts.turn" and report.data["interrupted"] is True
    assert report.data["usage"] == {"tts_provider": "piper", "tts_characters": len(LONG_TURN)}


async def test_each_chunk_gets_a_span_under_the_senders_trace(tts, wait_until, span_exporter) -> None:
    exporter = span_exporter
    call = await tts.call()
    with trace.get_tracer("test").start_as_current_span("brain.turn") as parent:
        headers = inject_headers()
    await call.say("t1", 0, "Tracing works.", headers=headers)
    await call.say("t1", 1, "Twice.", final=True, headers=headers)
    await wait_until(lambda: call.finished("t1"))
    await wait_until(lambda: len([s for s in exporter.get_finished_spans() if s.name == "tts.chunk"]) >= 2)

    spans = [s for s in exporter.get_finished_spans() if s.name == "tts.chunk"]
    context = parent.get_span_context()
    assert all(s.parent is not None and s.parent.span_id == context.span_id for s in spans)
    assert all(s.context.trace_id == context.trace_id for s in spans)
    assert sorted(s.attributes["chunk.seq"] for s in spans) == [0, 1]
    assert {s.attributes["tts.provider"] for s in spans} == {"piper"}
