"""The TTS service against a real nats-server: claim a call, speak, obey an interrupt, drain."""

from __future__ import annotations

import asyncio
import time

import pytest
from faststream.nats import NatsBroker

from ringline.contracts import subjects
from ringline.contracts.codec import MsgpackCodec
from ringline.contracts.messages import AgentAudio, CallEnd, CallEvent, CallStart, Control, ReplyChunk
from ringline.contracts.runtime import STAGE_READY
from ringline.services.tts.app import build_service
from ringline.services.tts.piper_provider import PiperSynthesizer
from ringline.services.tts.settings import TtsSettings

pytestmark = pytest.mark.integration


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.02)


async def test_speaks_a_call_over_real_nats(nats_server, piper_synth) -> None:  # type: ignore[no-untyped-def]
    service = build_service(TtsSettings(nats_url=nats_server.url), PiperSynthesizer(synth=piper_synth))
    await service.startup()
    await service.broker.start()
    client = NatsBroker(nats_server.url, codec=MsgpackCodec())
    audio: list[AgentAudio] = []
    events: list[CallEvent] = []
    client.subscriber(subjects.audio_out("CA1"))(lambda m: audio.append(AgentAudio.model_validate(m)))
    client.subscriber(subjects.event("CA1"))(lambda m: events.append(CallEvent.model_validate(m)))
    await client.start()
    try:
        await client.publish(CallStart(call_id="CA1"), subjects.CALLS_START)
        await _until(lambda: any(e.name == STAGE_READY for e in events))

        await client.publish(ReplyChunk(call_id="CA1", turn_id="t1", seq=0, text="Hello from a real bus.",
                                        final=True), subjects.reply("CA1"))
        await _until(lambda: any(a.final for a in audio))
        assert audio[-1].mark == "t1:0" and [a.seq for a in audio] == list(range(len(audio)))

        long_text = " ".join(f"This is sentence {n} of a long answer." for n in range(12))
        await client.publish(ReplyChunk(call_id="CA1", turn_id="t2", seq=0, text=long_text, final=True),
                             subjects.reply("CA1"))
        await _until(lambda: any(a.turn_id == "t2" for a in audio))
        await client.publish(Control(call_id="CA1", action="interrupt", turn_id="t2"), subjects.control("CA1"))
        await asyncio.sleep(0.2)  # what was already in flight lands
        heard = len(audio)
        await asyncio.sleep(1.0)
        assert len(audio) == heard and not any(a.final for a in audio if a.turn_id == "t2")

        await client.publish(CallEnd(call_id="CA1"), subjects.CALLS_END)
        await _until(lambda: "CA1" not in service.router.sessions)
    finally:
        await client.stop()
        await service.router.drain()
        await service.broker.stop()
        await service.shutdown()
