"""What `DeepgramStream` puts on the wire and what it makes of Deepgram's answers."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ringline.services.stt.deepgram import DeepgramOptions, DeepgramRecognizer, SttEvent

from doubles.audio import frames, silence, tone
from doubles.deepgram import DeepgramDouble, DeepgramFaults

pytestmark = pytest.mark.service

QUESTION = "What is the capital of France?"


def options(double: DeepgramDouble, **extra) -> DeepgramOptions:
    return DeepgramOptions(api_key="dg-key", base_url=double.ws_url, keyterms=("Ringline", "Paris"), **extra)


async def stream_audio(stream, pcm: np.ndarray, pace_s: float = 0.0005, t0: float | None = None) -> None:
    for i, frame in enumerate(frames(pcm)):
        await stream.send(frame, captured_at=None if t0 is None else t0 + i * 0.02)
        await asyncio.sleep(pace_s)


async def collect(stream, into: list[SttEvent]) -> None:
    async for event in stream.events():
        into.append(event)


async def test_connects_with_the_phone_format_and_listen_options():
    async with DeepgramDouble() as double:
        stream = await DeepgramRecognizer(options(double)).open()
        await stream.aclose()
        (record,) = double.connections
        assert record.headers["authorization"] == "Token dg-key"
        expected = {"model": "nova-3", "encoding": "mulaw", "sample_rate": "8000", "interim_results": "true",
                    "endpointing": "300", "utterance_end_ms": "1000", "vad_events": "true", "language": "en"}
        assert {k: record.param(k) for k in expected} == expected
        assert record.query["keyterm"] == ["Ringline", "Paris"]


async def test_a_calls_agent_adds_its_own_keyterms():
    from ringline.services.stt.cloud import call_keyterms

    async with DeepgramDouble() as double:
        terms = call_keyterms({"stt_keyterms": "sourdough, Paris,,Bell's"})
        stream = await DeepgramRecognizer(options(double)).open(terms)
        await stream.aclose()
        (record,) = double.connections
        assert record.query["keyterm"] == ["Ringline", "Paris", "sourdough", "Bell's"]


async def test_mulaw_goes_out_as_is_and_hangup_closes_the_stream_cleanly():
    audio = np.concatenate([tone(600), silence(200)])
    async with DeepgramDouble(script=[QUESTION]) as double:
        stream = await DeepgramRecognizer(options(double)).open()
        events: list[SttEvent] = []
        reader = asyncio.create_task(collect(stream, events))
        await stream_audio(stream, audio)
        await stream.aclose()  # hang-up mid-turn: CloseStream flushes what was heard
        await asyncio.wait_for(reader, 3)
        record = double.connections[0]
        assert record.audio_bytes == audio.size == stream.stats.audio_bytes
        assert record.count("CloseStream") == 1 and record.close_code == 1000
        assert [e.text for e in events if e.kind == "final"] == [QUESTION]
        assert stream.stats.billed_s == pytest.approx(audio.size / 8000, abs=0.02)


async def test_interim_then_final_with_word_timings_and_utterance_end():
    audio = np.concatenate([silence(400), tone(1600), silence(1500)])
    async with DeepgramDouble(script=[QUESTION]) as double:
        stream = await DeepgramRecognizer(options(double)).open()
        events: list[SttEvent] = []
        reader = asyncio.create_task(collect(stream, events))
        t0 = time.time()
        await stream_audio(stream, audio, t0=t0)
        await asyncio.sleep(0.2)
        await stream.aclose()
        await reader
    kinds = [e.kind for e in events]
    assert kinds[0] == "speech_started" and "interim" in kinds
    assert kinds.index("interim") < kinds.index("final") < kinds.index("utterance_end")
    interims = [e.text for e in events if e.kind == "interim"]
    assert all(QUESTION.startswith(text) for text in interims)
    (final,) = [e for e in events if e.kind == "final"]
    assert final.text == QUESTION and final.end_of_turn and final.end_reason == "endpointing"
    assert [w.text for w in final.words] == QUESTION.split()
    assert final.start_s == pytest.approx(0.4, abs=0.05) and final.end_s == pytest.approx(2.0, abs=0.05)
    # Wall-clock times come from the frames' capture times, not from when results arrived.
    assert final.started_at == pytest.approx(t0 + 0.4, abs=0.05)
    assert final.ended_at == pytest.approx(t0 + 2.0, abs=0.05)


async def test_frames_go_out_in_sends_of_send_ms_with_their_capture_times_and_nothing_left_behind():
    """40 ms sends: half the websocket messages of one per frame; the words' wall-clock times are
    still the frames' capture times; a finalize and the close send what was gathered."""
    audio = np.concatenate([silence(400), tone(1600), silence(1500), tone(300)])  # 3.8 s: 190 frames
    async with DeepgramDouble(script=[QUESTION, "And then?"]) as double:
        stream = await DeepgramRecognizer(options(double, send_ms=40)).open()
        events: list[SttEvent] = []
        reader = asyncio.create_task(collect(stream, events))
        t0 = time.time()
        await stream_audio(stream, audio[:-160], t0=t0)  # 189 frames: the last stays gathered ...
        await stream.finalize()  # ... until the finalize sends it
        await stream.send(b"\xff" * 160, captured_at=t0 + 3.8)  # the close sends this one
        await stream.aclose()
        await reader
        record = double.connections[0]
    assert record.audio_messages == 94 + 1 + 1
    assert record.audio_bytes == audio.size == stream.stats.audio_bytes
    final = next(e for e in events if e.kind == "final" and e.text == QUESTION)
    assert final.started_at == pytest.approx(t0 + 0.4, abs=0.05)
    assert final.ended_at == pytest.approx(t0 + 2.0, abs=0.05)


async def test_finalize_ends_the_turn_without_waiting_for_silence():
    async with DeepgramDouble(script=[QUESTION]) as double:
        stream = await DeepgramRecognizer(options(double)).open()
        events: list[SttEvent] = []
        reader = asyncio.create_task(collect(stream, events))
        await stream_audio(stream, tone(1200))
        await stream.finalize()
        await asyncio.sleep(0.2)
        await stream.aclose()
        await reader
        finals = [e for e in events if e.kind == "final"]
        assert finals[0].text == QUESTION and finals[0].end_of_turn and finals[0].end_reason == "finalize"
        assert double.connections[0].count("Finalize") == 1


async def test_keepalive_holds_a_silent_connection_open():
    # The double closes after 0.6 s without input, as Deepgram does after 10 s.
    async with DeepgramDouble(faults=DeepgramFaults(idle_timeout_s=0.6)) as double:
        stream = await DeepgramRecognizer(options(double, keepalive_s=0.2)).open()
        await stream_audio(stream, silence(200))
        await asyncio.sleep(1.5)  # no audio: the caller's side went quiet
        await stream_audio(stream, silence(200))  # still connected
        assert stream.error is None
        await stream.aclose()
        record = double.connections[0]
        assert record.count("KeepAlive") >= 4 and stream.stats.keepalives == record.count("KeepAlive")


async def test_without_keepalive_the_server_closes_and_the_stream_says_so():
    async with DeepgramDouble(faults=DeepgramFaults(idle_timeout_s=0.3)) as double:
        stream = await DeepgramRecognizer(options(double, keepalive_s=30)).open()
        events: list[SttEvent] = []
        with pytest.raises(Exception, match="NET-0001"):
            async with asyncio.timeout(2):
                await collect(stream, events)
        await stream.aclose()


def _results(text: str, start: float, duration: float, is_final: bool, speech_final: bool = False) -> dict:
    words = text.split()
    step = duration / max(len(words), 1)
    return {"type": "Results", "channel_index": [0, 1], "start": start, "duration": duration,
            "is_final": is_final, "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.9, "words": [
                {"word": w.lower(), "punctuated_word": w, "start": start + i * step,
                 "end": start + (i + 1) * step, "confidence": 0.9} for i, w in enumerate(words)]}]},
            "metadata": {"request_id": "r", "model_info": {"name": "n", "version": "v", "arch": "a"},
                         "model_uuid": "u"}}


def test_finals_accumulate_until_utterance_end_closes_the_turn():
    """On a noisy line speech_final may never come; UtteranceEnd then ends the turn."""
    from deepgram.core.unchecked_base_model import construct_type
    from deepgram.listen.v1.socket_client import V1SocketClientResponse

    from ringline.services.stt.deepgram import TurnAssembler

    def parse(message: dict):
        return construct_type(type_=V1SocketClientResponse, object_=message)  # as the SDK does

    turns = TurnAssembler()
    turns.sent(0.0, 1000.0)  # the stream's audio started at wall time 1000
    events = []
    for message in [_results("I'd like to", 0.5, 1.0, False), _results("I'd like to", 0.5, 1.0, True),
                    _results("book a table.", 1.5, 1.0, True),
                    {"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": 2.5}]:
        events += turns.feed(parse(message), now=1003.0)
    assert [(e.kind, e.end_of_turn) for e in events] == [("interim", False), ("final", False), ("final", False),
                                                         ("final", True)]
    last = events[-1]
    assert last.text == "I'd like to book a table." and last.end_reason == "utterance_end"
    assert (last.start_s, last.end_s) == (0.5, 2.5) and (last.started_at, last.ended_at) == (1000.5, 1002.5)
    assert len(last.words) == 6
    # The next turn starts empty.
    (nxt,) = turns.feed(parse(_results("Thanks.", 4.0, 0.5, True, speech_final=True)), now=1005.0)
    assert nxt.text == "Thanks." and nxt.end_of_turn and nxt.end_reason == "endpointing"
