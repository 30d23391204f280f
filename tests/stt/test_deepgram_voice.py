"""Voice activity beside Deepgram (its protocol double, tests/doubles/deepgram.py) on a real
nats-server: speech events carry the caller's voiced time as they speak, so the brain's
pause/confirm/resume barge-in works with Deepgram too, and the maximum turn length holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AudioFrame, CallStart, LiveCall, SpeechEvent, Transcript
from ringline.contracts.runtime import create_broker
from ringline.contracts.runtime.leases import Registry
from ringline.services.stt.app import build_service
from ringline.services.stt.settings import SttSettings

from doubles.deepgram import DeepgramDouble

pytestmark = pytest.mark.integration

CALL = "call-dg-voice"
QUESTION = "What is the capital of France?"
LONG = ("I have been meaning to call about the order I placed last week because the parcel came with "
        "the wrong colour and the wrong size and I would like to swap it")


class Line:
    def __init__(self) -> None:
        self.speech: list[SpeechEvent] = []
        self.finals: list[Transcript] = []
        self.seq = 0

    async def until(self, check: Callable[[], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.02)


async def run_call(nats_url: str, double: DeepgramDouble, audio: np.ndarray, custom: dict[str, str] | None = None,
                   finals: int = 1) -> Line:
    settings = SttSettings(nats_url=nats_url, provider="deepgram", deepgram_api_key="dg-test",
                           deepgram_base_url=double.ws_url)
    service = build_service(settings)
    client = create_broker(settings, "test-caller")
    line = Line()

    @client.subscriber(subjects.speech(CALL))
    async def on_speech(event: SpeechEvent) -> None:
        line.speech.append(event)

    @client.subscriber(subjects.transcript(CALL))
    async def on_transcript(transcript: Transcript) -> None:
        if transcript.is_final:
            line.finals.append(transcript)

    await service.app.start()
    await client.start()
    try:
        start = CallStart(call_id=CALL, custom=custom or {})
        await (await Registry.open(client)).put(LiveCall(call=start))  # what the edge does at `start`
        await client.publish(start, subjects.CALLS_START)
        await line.until(lambda: CALL in service.router.sessions, 10)
        session = service.router.sessions[CALL]
        await line.until(lambda: session.mode == "deepgram", 10)
        payload = mulaw_encode(audio)
        clock = time.time()
        for offset in range(0, len(payload), 160):  # a little faster than real time
            await client.publish(AudioFrame(call_id=CALL, seq=line.seq, payload=payload[offset:offset + 160],
                                            captured_at=clock), subjects.audio_in(CALL))
            line.seq += 1
            clock += 0.02
            await asyncio.sleep(0.004)
        await line.until(lambda: len(line.finals) >= finals)
        await asyncio.sleep(0.3)
    finally:
        await client.stop()
        await service.app.stop()
    return line


async def test_speech_events_carry_real_voiced_time_with_deepgram(nats_server, speak, silence):
    audio = speak(QUESTION)
    async with DeepgramDouble(script=[QUESTION]) as double:
        line = await run_call(nats_server.url, double, np.concatenate([silence(300), audio, silence(1500)]))
    (final,) = line.finals
    assert final.text == QUESTION and final.provider == "deepgram-nova-3"
    kinds = [s.kind for s in line.speech]
    assert kinds[0] == "started" and kinds[-1] == "stopped" and kinds.count("stopped") == 1
    ticks = [s.voiced_ms for s in line.speech if s.kind == "continuing"]
    assert len(ticks) >= 15 and ticks == sorted(ticks)  # every ~50 ms of voiced audio, growing
    # enough to pause (250 ms) and then interrupt (600 ms) the agent, as with the local path
    assert ticks[-1] >= 600 and ticks[-1] <= len(audio) / 8 + 60
    assert {s.utterance_id for s in line.speech} == {final.utterance_id}


async def test_the_maximum_turn_length_holds_with_deepgram(nats_server, speak, silence):
    audio = speak(LONG)
    assert len(audio) / 8000 > 5
    async with DeepgramDouble(script=[LONG, LONG]) as double:
        line = await run_call(nats_server.url, double, np.concatenate([silence(300), audio, silence(1500)]),
                              custom={"stt_max_utterance_ms": "3000"})
        (record,) = double.connections
    first = line.finals[0]
    assert first.end_reason == "max_length" and record.count("Finalize") >= 1
    # cut near 3 s (audio goes out faster than real time while the Finalize travels), not at the end
    assert 2.5 <= first.speech_ended_at - first.speech_started_at <= 4.0 < len(audio) / 8000 - 1
