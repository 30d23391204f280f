"""The stt service end to end on the in-memory broker, with the real Whisper model on real speech.

Speech is Piper's joe voice pushed through 8 kHz mu-law, fed as 20 ms frames stamped with
wall-clock capture times (back-dated, so no real-time sleeping is needed). While an early decode
runs the caller waits for it before the next frame, as if decoding took no time against real-time
audio: the end-of-turn decisions then depend on the words, not on how busy the machine is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AudioFrame, CallStart, Transcript
from ringline.contracts.runtime import create_broker
from ringline.services.stt.app import build_service
from ringline.services.stt.settings import SttSettings

from .conftest import CALL

pytestmark = pytest.mark.integration

LEAD_S = 0.5


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


async def test_real_speech_becomes_a_final_transcript(call, speak, silence):
    speech = speak("Please transfer me to someone in billing.")
    audio = np.concatenate([silence(int(LEAD_S * 1000), noise=20), speech, silence(1000, noise=20)])
    start = time.time() - len(audio) / 8000
    await call.say(audio, start)
    await call.wait_for(1)

    [transcript] = call.finals
    assert {"transfer", "billing"} <= words(transcript.text)
    assert transcript.is_final and transcript.end_of_turn and transcript.end_reason == "complete"
    assert transcript.provider == "whisper-tiny.en"
    # timings: started near the first word, ended at (not 500 ms after) the last one
    speech_s = len(speech) / 8000
    assert start + LEAD_S - 0.05 <= transcript.speech_started_at <= start + LEAD_S + 0.3
    assert transcript.speech_ended_at <= start + LEAD_S + speech_s + 0.05
    assert transcript.speech_ended_at - transcript.speech_started_at > speech_s - 0.4
    assert transcript.emitted_at >= transcript.speech_ended_at

    assert [(s.kind, s.utterance_id) for s in call.speech if s.kind != "continuing"] == [
        ("started", transcript.utterance_id),
        ("stopped", transcript.utterance_id),
    ]
    assert call.speech[0].at == transcript.speech_started_at
    assert call.speech[-1].kind == "stopped" and call.speech[-1].at == transcript.speech_ended_at
    assert "traceparent" in call.headers[call.transcripts.index(transcript)]  # the span travels with it


async def test_two_utterances_two_transcripts_in_order(call, speak, silence):
    first = speak("What time does the pharmacy close?")
    second = speak("My order number is four five seven two.")
    audio = np.concatenate([silence(500), first, silence(1200), second, silence(1000)])
    await call.say(audio, time.time() - len(audio) / 8000)
    await call.wait_for(2)
    assert {"pharmacy", "close"} <= words(call.finals[0].text)
    assert "order" in words(call.finals[1].text)
    assert call.finals[0].speech_ended_at < call.finals[1].speech_started_at


async def test_garbage_frames_are_skipped_without_losing_the_transcript(call, speak, silence):
    speech = speak("Could you call me back later this afternoon?")
    audio = np.concatenate([silence(500), speech, silence(1000)])
    start = time.time() - len(audio) / 8000
    half = (len(audio) // 2) // 160 * 160
    await call.say(audio[:half], start)

    garbage: list[Any] = [
        {"type": "audio.frame", "call_id": CALL, "seq": 1, "payload": 12345},  # not bytes
        {"type": "speech", "call_id": CALL, "seq": 1, "payload": b"\xff" * 160},  # wrong type
        {"type": "audio.frame", "call_id": CALL, "seq": -5, "payload": b""},  # bad seq
        b"\x00\x01not msgpack at all",
        "a plain string",
    ]
    for junk in garbage:
        try:  # the in-memory broker re-raises the subscriber's validation error here
            await call.broker.publish(junk, subjects.audio_in(CALL))
        except Exception:
            pass
    # valid but odd frames: an empty payload, another call's frame, a short payload
    await call.broker.publish(AudioFrame(call_id=CALL, seq=call.seq, payload=b""), subjects.audio_in(CALL))
    await call.broker.publish(
        AudioFrame(call_id="someone-else", seq=0, payload=b"\x00" * 160), subjects.audio_in(CALL)
    )

    call.seq += 1
    await call.say(audio[half:], start + half / 8000)
    await call.wait_for(1)
    assert {"call", "back", "afternoon"} <= words(call.finals[0].text)


async def test_on_a_real_nats_server_malformed_frames_are_logged_and_skipped(
    nats_server, speak, silence, caplog
):
    settings = SttSettings(nats_url=nats_server.url)
    service = build_service(settings)
    caller = create_broker(settings, "test-caller")
    transcripts: list[Transcript] = []

    @caller.subscriber(subjects.transcript(CALL))
    async def on_transcript(message: Transcript) -> None:
        if message.is_final:
            transcripts.append(message)

    await service.app.start()
    await caller.start()
    try:
        await caller.publish(CallStart(call_id=CALL), subjects.CALLS_START)
        await asyncio.sleep(0.2)  # the stt replica claims the call and subscribes to its audio
        speech = speak("Please transfer me to someone in billing.")
        audio = mulaw_encode(np.concatenate([silence(500), speech, silence(1000)]))
        start = time.time() - len(audio) / 8000
        junk: list[Any] = [
            {"type": "audio.frame", "call_id": CALL, "seq": 1, "payload": 12345},
            b"\x92\xc1 broken msgpack",
            "a plain string",
        ]
        for seq, offset in enumerate(range(0, len(audio), 160)):
            if seq == 40:
                for item in junk:
                    await caller.publish(item, subjects.audio_in(CALL))
            frame = AudioFrame(
                call_id=CALL, seq=seq, payload=audio[offset : offset + 160], captured_at=start + offset / 8000
            )
            await caller.publish(frame, subjects.audio_in(CALL))
        deadline = time.monotonic() + 20
        while not transcripts:
            assert time.monotonic() < deadline, "no transcript"
            await asyncio.sleep(0.05)
    finally:
        await caller.stop()
        await service.app.stop()
    assert {"transfer", "billing"} <= words(transcripts[0].text)
    # Caller frames arrive on the audio fast path (contracts/runtime/fastpath.py), not FastStream:
    # it logs each rejected frame and carries on.
    dropped = [r for r in caplog.records if r.name == "ringline.fastpath" and r.levelno >= logging.WARNING
               and "dropped a malformed AudioFrame" in r.getMessage()]
    assert len(dropped) >= len(junk)
