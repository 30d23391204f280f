"""The stt session on the in-memory broker, with a scripted recognizer (fast, deterministic).

The fake implements the real `Recognizer` interface: it "recognizes" the audio length, so a
transcript tells which audio it was decoded from.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from faststream.nats import TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AudioFrame, CallEnd, CallEvent, CallStart, SpeechEvent, Transcript
from ringline.services.stt.app import build_service
from ringline.services.stt.recognizer import Hypothesis, Recognizer
from ringline.services.stt.settings import SttSettings

CALL = "call-session-1"


class ScriptedRecognizer(Recognizer):
    name = "scripted"

    def __init__(self, delays: list[float] | None = None, texts: list[str] | None = None) -> None:
        self.delays = list(delays or [])
        self.texts = list(texts or [])
        self.calls: list[int] = []
        self.completed: list[int] = []
        self.loaded = False

    async def load(self) -> None:
        self.loaded = True

    async def _transcribe_impl(self, pcm16_8k: np.ndarray) -> Hypothesis:
        self.calls.append(len(pcm16_8k))
        text = self.texts.pop(0) if self.texts else f"{len(pcm16_8k)} samples"
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0.05)
        self.completed.append(len(pcm16_8k))
        if text == "boom":
            raise RuntimeError("model exploded")
        return Hypothesis(text)


class Harness:
    def __init__(self, recognizer: Recognizer, **settings: object) -> None:
        self.service = build_service(SttSettings(**settings), recognizer)
        self.transcripts: list[Transcript] = []
        self.speech: list[SpeechEvent] = []
        self.events: list[CallEvent] = []
        self.seq = 0
        self.clock = time.time() - 60
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

    async def send(self, pcm: np.ndarray) -> None:
        payload = mulaw_encode(pcm)
        for start in range(0, len(payload), 160):
            frame = AudioFrame(
                call_id=CALL, seq=self.seq, payload=payload[start : start + 160], captured_at=self.clock
            )
            await self.service.broker.publish(frame, subjects.audio_in(CALL))
            self.seq += 1
            self.clock += 0.02

    async def until(self, check, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


@pytest.fixture
async def harness_factory():
    opened = []

    async def make(recognizer: Recognizer, **settings: object) -> Harness:
        harness = Harness(recognizer, **settings)
        test_broker = TestNatsBroker(harness.service.broker)
        await test_broker.__aenter__()
        await harness.service.app.start()
        opened.append((harness, test_broker))
        await harness.service.broker.publish(CallStart(call_id=CALL), subjects.CALLS_START)
        return harness

    yield make
    for harness, test_broker in opened:
        await harness.service.app.stop()
        await test_broker.__aexit__(None, None, None)


async def test_startup_loads_the_recognizer_and_claims_the_call(harness_factory):
    recognizer = ScriptedRecognizer()
    harness = await harness_factory(recognizer)
    assert recognizer.loaded
    assert CALL in harness.service.router.sessions
    assert any(e.name == "stage.ready" for e in harness.events)


async def test_early_result_is_used_when_speech_does_not_resume(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer()
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(800), silence(700)]))
    await harness.until(lambda: harness.transcripts)
    assert len(recognizer.calls) == 1  # the speculative decode was the only one
    transcript = harness.transcripts[0]
    assert transcript.text == f"{8000 * (200 + 800 + 200) // 1000} samples"
    assert transcript.speech_ended_at - transcript.speech_started_at == pytest.approx(0.8, abs=0.001)
    [utterance] = [e for e in harness.events if e.name == "stt.utterance"]
    assert utterance.data["early_decode"] is True
    assert utterance.timing and utterance.timing.speech_ended_at == transcript.speech_ended_at


async def test_early_result_is_discarded_when_speech_resumes(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(delays=[0.05, 0.05, 0.05])
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(600), silence(300)]))
    await asyncio.sleep(0.2)  # the speculative decode of the first part finishes...
    await harness.send(np.concatenate([tone(600), silence(700)]))  # ...but the caller goes on
    await harness.until(lambda: harness.transcripts)
    await asyncio.sleep(0.1)
    assert len(harness.transcripts) == 1
    whole = 8000 * (200 + 600 + 300 + 600 + 200) // 1000
    assert harness.transcripts[0].text == f"{whole} samples"
    session = harness.service.router.sessions[CALL]
    assert session.stats.early_discarded == 1 and session.stats.early_used == 1


async def test_without_early_decode_the_final_audio_is_decoded_once(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer()
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(800), silence(700)]))
    await harness.until(lambda: harness.transcripts)
    assert len(recognizer.calls) == 1
    assert harness.service.router.sessions[CALL].stats.early_started == 0


async def test_speech_events_bracket_each_utterance(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer())
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len(harness.transcripts) == 2)
    assert [s.kind for s in harness.speech] == ["started", "stopped", "started", "stopped"]
    first, second = harness.transcripts
    assert harness.speech[0].utterance_id == harness.speech[1].utterance_id == first.utterance_id
    assert harness.speech[2].utterance_id == second.utterance_id != first.utterance_id
    assert harness.speech[1].at == first.speech_ended_at


async def test_transcripts_keep_utterance_order_when_decodes_finish_out_of_order(
    harness_factory, tone, silence
):
    recognizer = ScriptedRecognizer(delays=[0.5, 0.01], texts=["first", "second"])
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len(harness.transcripts) == 2)
    assert [t.text for t in harness.transcripts] == ["first", "second"]


async def test_empty_recognition_reports_an_event_and_no_transcript(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer(texts=["", "boom"]))
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len([e for e in harness.events if e.name == "stt.empty"]) == 2)
    assert harness.transcripts == []
    empty, failed = [e for e in harness.events if e.name == "stt.empty"]
    assert empty.data["reason"] == "no words"
    assert "model exploded" in failed.data["reason"]


async def test_call_end_cancels_a_pending_decode(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(delays=[5.0])
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(500), silence(800)]))
    await harness.until(lambda: recognizer.calls)
    await harness.service.broker.publish(CallEnd(call_id=CALL), subjects.CALLS_END)
    await asyncio.sleep(0.1)
    assert CALL not in harness.service.router.sessions
    assert recognizer.completed == [] and harness.transcripts == []


async def test_sequence_gaps_do_not_stall(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer())
    harness.seq = 10
    await harness.send(np.concatenate([silence(300), tone(300)]))
    harness.seq += 7  # lost frames
    await harness.send(np.concatenate([tone(300), silence(800)]))
    await harness.until(lambda: harness.transcripts)
    assert harness.service.router.sessions[CALL].stats.seq_gaps == 1
