"""The stt stage with Deepgram (against its double) and the fall back to local Whisper mid-call."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from faststream.nats import TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AudioFrame, CallEvent, CallStart, Control, SpeechEvent, Transcript
from ringline.contracts.pricing import Usage
from ringline.services.stt.app import build_service
from ringline.services.stt.cloud import DeepgramSession
from ringline.services.stt.settings import SttSettings

from doubles.deepgram import DeepgramDouble, DeepgramFaults

pytestmark = pytest.mark.integration

pytest.importorskip("faster_whisper")

CALL = "call-dg-1"
FIRST = "What is the capital of France?"
SECOND = "I would like to book a table for two."


class Caller:
    def __init__(self, settings: SttSettings) -> None:
        self.service = build_service(settings)
        self.transcripts: list[Transcript] = []
        self.speech: list[SpeechEvent] = []
        self.events: list[CallEvent] = []
        self.seq = 0
        self.clock = time.time()
        broker = self.service.broker
        broker.subscriber(subjects.transcript(CALL))(self._on_transcript)
        broker.subscriber(subjects.speech(CALL))(self._on_speech)
        broker.subscriber(subjects.event(CALL))(self._on_event)

    async def _on_transcript(self, message: Transcript) -> None:
        self.transcripts.append(message)

    async def _on_speech(self, message: SpeechEvent) -> None:
        self.speech.append(message)

    async def _on_event(self, message: CallEvent) -> None:
        self.events.append(message)

    @property
    def finals(self) -> list[Transcript]:
        return [t for t in self.transcripts if t.is_final]

    def named(self, name: str) -> list[CallEvent]:
        return [e for e in self.events if e.name == name]

    @property
    def session(self) -> DeepgramSession:
        return self.service.router.sessions[CALL]

    async def say(self, pcm: np.ndarray) -> None:
        """Frames a little faster than real time (the double endpoints in audio time)."""
        payload = mulaw_encode(pcm)
        for start in range(0, len(payload), 160):
            frame = AudioFrame(call_id=CALL, seq=self.seq, payload=payload[start : start + 160],
                               captured_at=self.clock)
            await self.service.broker.publish(frame, subjects.audio_in(CALL))
            self.seq += 1
            self.clock += 0.02
            await asyncio.sleep(0.002)
            while self.session.deciding:
                await asyncio.sleep(0.002)

    async def until(self, check, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


async def _start(double: DeepgramDouble, **settings: object) -> tuple[Caller, TestNatsBroker]:
    caller = Caller(SttSettings(provider="deepgram", deepgram_api_key="dg-test",
                                deepgram_base_url=double.ws_url, **settings))
    test_broker = TestNatsBroker(caller.service.broker)
    await test_broker.__aenter__()
    await caller.service.app.start()
    await caller.service.broker.publish(CallStart(call_id=CALL), subjects.CALLS_START)
    await caller.until(lambda: CALL in caller.service.router.sessions, 5)
    return caller, test_broker


async def _stop(caller: Caller, test_broker: TestNatsBroker) -> None:
    await caller.service.app.stop()
    await test_broker.__aexit__(None, None, None)


def test_settings_choose_deepgram_only_when_asked_or_keyed(monkeypatch):
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    assert not SttSettings().use_deepgram and not SttSettings(provider="auto").use_deepgram
    assert SttSettings(provider="deepgram").use_deepgram
    monkeypatch.setenv("DEEPGRAM_API_KEY", "dg-env")
    auto = SttSettings(provider="auto")
    assert auto.use_deepgram and auto.deepgram_api_key.get_secret_value() == "dg-env"
    assert not SttSettings().use_deepgram  # the default stays local


async def test_speech_is_transcribed_by_deepgram_with_usage(speak, silence):
    async with DeepgramDouble(script=[FIRST]) as double:
        caller, broker = await _start(double)
        try:
            await caller.until(lambda: caller.session.mode == "deepgram", 5)
            audio = speak(FIRST)
            await caller.say(np.concatenate([silence(300), audio, silence(1500)]))
            await caller.until(lambda: caller.finals and caller.named("stt.utterance"))
            (final,) = caller.finals
            assert final.text == FIRST and final.end_of_turn and final.provider == "deepgram-nova-3"
            assert final.end_reason == "endpointing"
            assert final.speech_started_at <= final.speech_ended_at
            assert [s.kind for s in caller.speech if s.kind != "continuing"] == ["started", "stopped"]
            assert all(s.utterance_id == final.utterance_id for s in caller.speech)
            (event,) = caller.named("stt.utterance")
            assert event.turn_id == final.utterance_id
            usage = Usage.model_validate(event.data["usage"])
            assert usage.stt_provider == "deepgram-nova-3"
            # The audio streamed up to this turn's end (endpointing: ~300 ms after the last word).
            assert audio.size / 8000 * 0.8 < usage.stt_seconds <= 0.3 + audio.size / 8000 + 1.5 + 0.01
            assert event.data["end_of_turn_ms"] >= 0
            assert not caller.named("stt.fallback")
            record = double.connections[0]
            assert record.param("model") == "nova-3" and record.param("encoding") == "mulaw"
            # Hang-up closes the stream cleanly.
            await caller.service.broker.publish(Control(call_id=CALL, action="ended", reason="hangup"),
                                                subjects.control(CALL))
            await caller.until(lambda: record.close_code is not None, 5)
            assert record.count("CloseStream") == 1 and record.close_code == 1000
        finally:
            await _stop(caller, broker)


async def test_disconnect_mid_call_falls_back_to_whisper_for_the_utterance_in_progress(speak, silence):
    async with DeepgramDouble(script=[FIRST, SECOND]) as double:
        caller, broker = await _start(double)
        try:
            await caller.until(lambda: caller.session.mode == "deepgram", 5)
            await caller.say(np.concatenate([silence(300), speak(FIRST), silence(1500)]))
            await caller.until(lambda: caller.finals)
            assert caller.finals[0].provider == "deepgram-nova-3"
            outbox_sent = double.connections[0].sent
            double.faults.disconnect_after = len(outbox_sent)  # the next message drops the connection
            await caller.say(np.concatenate([speak(SECOND), silence(1500)]))
            await caller.until(lambda: len(caller.finals) >= 2)
            (fallback,) = caller.named("stt.fallback")
            assert fallback.data["from"] == "deepgram" and fallback.data["to"] == "whisper"
            assert fallback.data["reason"]
            assert fallback.data["replayed_frames"] > 0  # the utterance in progress went to Whisper
            assert caller.session.mode == "local"
            second = caller.finals[1]
            assert second.provider != "deepgram-nova-3"
            words = second.text.lower()
            assert "table" in words and "two" in words
        finally:
            await _stop(caller, broker)


@pytest.mark.parametrize("status", [500, 429])
async def test_refused_connect_leaves_the_call_to_whisper(speak, silence, status):
    async with DeepgramDouble(script=[FIRST], faults=DeepgramFaults(reject_status=status)) as double:
        caller, broker = await _start(double)
        try:
            await caller.until(lambda: caller.named("stt.fallback"), 10)
            (fallback,) = caller.named("stt.fallback")
            assert fallback.data["reason"] and fallback.data["status"] == status
            await caller.say(np.concatenate([silence(300), speak(FIRST), silence(1500)]))
            await caller.until(lambda: caller.finals)
            (final,) = caller.finals
            assert final.provider != "deepgram-nova-3" and "capital" in final.text.lower()
            assert double.connections == []
        finally:
            await _stop(caller, broker)
