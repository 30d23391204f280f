"""TTS fixtures: one real Piper voice for the whole run, the service on the in-memory broker,
the Cartesia double (tests/doubles, imported as `doubles`) and an in-memory span exporter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from faststream.nats import NatsBroker, TestNatsBroker
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ringline.contracts import subjects
from ringline.contracts.messages import AgentAudio, CallEvent, CallStart, Control, ReplyChunk
from ringline.contracts.runtime import setup_telemetry
from ringline.services.tts.app import TtsService, build_service
from ringline.services.tts.piper_provider import PiperSynthesizer
from ringline.services.tts.piper_voice import PiperSynth
from ringline.services.tts.provider import Synthesizer
from ringline.services.tts.settings import TtsSettings


@pytest.fixture(scope="session")
def piper_synth() -> PiperSynth:
    """The packaged voice, loaded once (about a second) and shared by every test."""
    return PiperSynth(threads=1)


@pytest.fixture
async def piper(piper_synth: PiperSynth) -> AsyncIterator[PiperSynthesizer]:
    synth = PiperSynthesizer(synth=piper_synth, warmup_text="")
    await synth.start()
    yield synth
    await synth.aclose()


async def _wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


@pytest.fixture
def wait_until() -> Callable[..., Any]:
    """`await wait_until(predicate, timeout=10)`: the worker thread needs a moment; poll for it."""
    return _wait_until


class Call:
    """One call on the in-memory bus: sends what the brain would, records what TTS publishes."""

    def __init__(self, broker: NatsBroker, call_id: str, custom: dict[str, str] | None = None) -> None:
        self.broker = broker
        self.call_id = call_id
        self.custom = custom or {}
        self.audio: list[AgentAudio] = []
        self.events: list[CallEvent] = []
        self.audio_headers: list[dict[str, Any]] = []

    async def open(self) -> None:
        async def on_audio(audio: AgentAudio) -> None:
            self.audio.append(audio)

        async def on_event(event: CallEvent) -> None:
            self.events.append(event)

        for subject, handler in ((subjects.audio_out(self.call_id), on_audio),
                                 (subjects.event(self.call_id), on_event)):
            subscriber = self.broker.subscriber(subject, persistent=False)
            subscriber(handler)
            await subscriber.start()
        await self.broker.publish(CallStart(call_id=self.call_id, custom=self.custom), subjects.CALLS_START)

    async def say(self, turn_id: str, seq: int, text: str, final: bool = False,
                  headers: dict[str, str] | None = None) -> None:
        chunk = ReplyChunk(call_id=self.call_id, turn_id=turn_id, seq=seq, text=text, final=final)
        await self.broker.publish(chunk, subjects.reply(self.call_id), headers=headers)

    async def control(self, action: str, turn_id: str = "") -> None:
        await self.broker.publish(Control(call_id=self.call_id, action=action, turn_id=turn_id),
                                  subjects.control(self.call_id))

    def turn_audio(self, turn_id: str) -> list[AgentAudio]:
        return [a for a in self.audio if a.turn_id == turn_id]

    def finished(self, turn_id: str) -> bool:
        return any(a.final for a in self.turn_audio(turn_id))

    def event_names(self) -> list[str]:
        return [e.name for e in self.events]

    def event(self, name: str, turn_id: str) -> CallEvent:
        """The one event of that name for that turn."""
        (event,) = [e for e in self.events if e.name == name and e.turn_id == turn_id]
        return event

    def spoken(self, turn_id: str) -> list[tuple[str, bytes, set[str]]]:
        """(mark, audio, providers of the audio) per chunk of the turn, as the phone would play it."""
        out: list[tuple[str, bytes, set[str]]] = []
        audio, providers = b"", set()
        for piece in self.turn_audio(turn_id):
            audio += piece.payload
            if piece.payload:
                providers.add(piece.timing.tts_provider)
            if piece.mark:
                out.append((piece.mark, audio, providers))
                audio, providers = b"", set()
        return out


class Harness:
    def __init__(self, service: TtsService) -> None:
        self.service = service

    async def call(self, call_id: str = "call-1", custom: dict[str, str] | None = None) -> Call:
        call = Call(self.service.broker, call_id, custom)
        await call.open()
        return call


def cartesia_settings(double: Any, **extra: Any) -> TtsSettings:
    """Cartesia (the double at `double.ws_url`) first, then Piper."""
    return TtsSettings(cartesia_api_key="ct-test", cartesia_websocket_url=double.ws_url,
                       cartesia_voice_id="voice-1", cartesia_model_id="sonic-3", **extra)


def cartesia_asked(double: Any) -> dict[str, list[str]]:
    """context id -> the transcripts the Cartesia double got for it, over every connection."""
    out: dict[str, list[str]] = {}
    for record in double.connections:
        for request in record.requests:
            if "cancel" not in request:
                out.setdefault(request["context_id"], []).append(request["transcript"])
    return out


@pytest.fixture
def cloud() -> Any:
    """Helpers of the Cartesia tests: `cloud.settings(double, **extra)`, `cloud.asked(double)`."""
    return SimpleNamespace(settings=cartesia_settings, asked=cartesia_asked)


@pytest.fixture
def tts_settings() -> TtsSettings:
    return TtsSettings(gap_wait_s=1.0, stall_s=10.0, piece_ms=100)


@pytest.fixture
def make_harness(tts_settings: TtsSettings) -> Iterator[Callable[[Synthesizer], Any]]:
    """`async with make_harness(synth) as tts:` runs the service on TestNatsBroker."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def harness(synth: Synthesizer) -> AsyncIterator[Harness]:
        service = build_service(tts_settings, synth)
        await service.startup()
        try:
            async with TestNatsBroker(service.broker):
                yield Harness(service)
                await service.router.drain()
        finally:
            await service.shutdown()

    yield harness


@pytest.fixture
async def tts(make_harness: Callable[[Synthesizer], Any], piper: PiperSynthesizer) -> AsyncIterator[Harness]:
    async with make_harness(piper) as harness:
        yield harness


@pytest.fixture
def span_exporter() -> Iterator[InMemorySpanExporter]:
    """Finished spans of this test (the tracer provider is set up once per process)."""
    provider: Any = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = setup_telemetry("tts-test", None)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.shutdown()
