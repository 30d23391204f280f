"""A Cartesia context per agent turn: text pushed as the LLM streams it, audio back as raw
8 kHz mu-law, cancel on barge-in."""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.services.tts.cartesia import CartesiaOptions, CartesiaSynthesizer

from doubles.cartesia import CartesiaDouble, CartesiaFaults

pytestmark = pytest.mark.service

SENTENCES = ["Sure, I can take a message.", " Who should I say is calling?"]


def synthesizer(double: CartesiaDouble, **extra) -> CartesiaSynthesizer:
    values = {"voice_id": "voice-123", "model_id": "sonic-3", "stall_timeout_s": 0.3, **extra}
    return CartesiaSynthesizer(CartesiaOptions(api_key="ct-key", websocket_base_url=double.ws_url, **values))


async def test_one_context_per_turn_with_text_pushed_as_it_streams():
    async with CartesiaDouble(ms_per_char=60) as double:
        synth = synthesizer(double)
        await synth.start()
        turn = await synth.turn("turn-1")
        audio = bytearray()

        async def read() -> None:
            async for piece in turn.audio():
                audio.extend(piece)

        reader = asyncio.create_task(read())
        await turn.push(SENTENCES[0])
        await asyncio.sleep(0.6)  # the LLM is slow with the next sentence: not a stall
        await turn.push(SENTENCES[1])
        await turn.end()
        await asyncio.wait_for(reader, 5)
        await synth.aclose()

    chars = sum(len(s.strip()) for s in SENTENCES)
    assert len(audio) == chars * 60 * 8  # 60 ms a character, 8 bytes a ms
    assert turn.first_audio_s is not None and turn.first_audio_s < 0.2
    record = double.connections[0]
    assert record.headers["authorization"] == "Bearer ct-key" and record.headers["cartesia-version"]
    requests = record.requests
    assert {r["context_id"] for r in requests} == {"turn-1"}
    sent = [(r["transcript"], r["continue"]) for r in requests]
    assert sent == [(SENTENCES[0], True), (SENTENCES[1], True), ("", False)]
    first = requests[0]
    assert first["model_id"] == "sonic-3" and first["voice"] == {"id": "voice-123"} and first["language"] == "en"
    assert first["output_format"] == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}


async def test_cancel_stops_the_audio_at_once_and_tells_the_server():
    async with CartesiaDouble(faults=CartesiaFaults(rtf=0.5)) as double:
        synth = synthesizer(double)
        await synth.start()
        turn = await synth.turn()
        await turn.push("This is a long answer that the caller is about to interrupt. " * 3)
        pieces = 0
        cancelled_at = 0.0
        async for _ in turn.audio():
            pieces += 1
            if pieces == 2:
                cancelled_at = time.monotonic()
                await turn.cancel()  # barge-in, from the reader itself
        stopped = time.monotonic() - cancelled_at
        await asyncio.sleep(0.2)
        record = double.connections[0]
        assert pieces == 2 and stopped < 0.05
        assert record.cancelled == [turn.context_id] and record.chunks_after_cancel == 0
        # The connection is still good for the next turn.
        nxt = await synth.turn()
        await nxt.push("Go ahead.")
        await nxt.end()
        assert [p async for p in nxt.audio()]
        await synth.aclose()


async def test_cancel_from_another_task_ends_a_waiting_reader():
    async with CartesiaDouble(faults=CartesiaFaults(first_audio_ms=2000)) as double:
        synth = synthesizer(double, first_audio_timeout_s=5)
        turn = await synth.turn()
        await turn.push("Hello there.")
        reader = asyncio.create_task(anext(turn.audio(), None))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await turn.cancel()
        assert await asyncio.wait_for(reader, 1) is None
        assert time.monotonic() - started < 0.2
        await synth.aclose()


async def test_a_flush_marks_where_each_part_of_the_turn_ends():
    async with CartesiaDouble(ms_per_char=60) as double:
        synth = synthesizer(double)
        turn = await synth.turn("turn-2")
        parts = []
        for text, last in ((SENTENCES[0], False), ("Who should I say is calling?", True)):
            await turn.push(text)
            await (turn.end() if last else turn.flush())
            parts.append(b"".join([piece async for piece in turn.audio()]))
        await synth.aclose()

    # Each part's audio, exactly, then the mark: flush_done after the first, done after the last.
    assert [len(p) for p in parts] == [len(SENTENCES[0]) * 60 * 8, len(SENTENCES[1].strip()) * 60 * 8]
    assert turn.finished and turn.flushes == turn.flushes_done == 1
    record = double.connections[0]
    assert record.transcripts("turn-2") == [SENTENCES[0], " Who should I say is calling?"]  # joined with a space
    chunks = [m for m in record.sent if m["type"] == "chunk"]
    assert {m["flush_id"] for m in chunks} == {1, 2}
    assert [m["type"] for m in record.sent if m["type"] != "chunk"] == ["flush_done", "done"]


async def test_without_max_buffer_delay_0_cartesia_may_hold_a_whole_sentence_back():
    """The API buffers text for up to 3 s by default, waiting for more; we send whole sentences
    and ask for 0 (the double keeps the default when the field is missing)."""
    async with CartesiaDouble() as double:
        for delay, expect_audio in ((None, False), (0, True)):
            synth = synthesizer(double, max_buffer_delay_ms=delay)
            turn = await synth.turn()
            await turn.push(SENTENCES[0])
            try:
                first = await asyncio.wait_for(anext(turn.audio(), None), 0.5)
            except TimeoutError:
                first = None
            assert (first is not None) == expect_audio, delay
            await turn.cancel()
            await synth.aclose()
