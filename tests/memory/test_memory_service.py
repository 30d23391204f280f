"""The memory service against a real nats-server: records survive, the CLI API reads them."""

from __future__ import annotations

import asyncio
import time

import pytest
from faststream.nats import NatsBroker

from ringline.contracts import subjects
from ringline.contracts.codec import MsgpackCodec
from ringline.contracts.messages import (
    CallEnd,
    CallEvent,
    CallStart,
    ReplyChunk,
    Transcript,
    TurnTiming,
)
from ringline.records import format_record, get_call, list_calls, wait_for_ended
from ringline.services.memory.app import MemoryService
from ringline.services.memory.settings import MemorySettings

from doubles.bus import settled

pytestmark = pytest.mark.integration


async def _claimed(url: str, call_id: str) -> None:
    """Until the memory service has claimed the call (it saves the record once subscribed)."""
    for _ in range(100):
        try:
            if await get_call(url, call_id, timeout=1.0) is not None:
                return
        except Exception:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"memory never claimed {call_id}")


async def _run_call(broker: NatsBroker, url: str, call_id: str) -> None:
    t0 = time.time() + 5  # the caller's question comes after the greeting
    await broker.publish(CallStart(call_id=call_id, caller="+15550001111"), subjects.CALLS_START)
    await _claimed(url, call_id)
    greeting = ReplyChunk(call_id=call_id, turn_id="g1", seq=0, text="Hi, I'm an AI.", final=True, kind="greeting")
    await broker.publish(greeting, subjects.reply(call_id))
    question = Transcript(call_id=call_id, utterance_id="u1", text="What is the capital of France?",
                          speech_started_at=t0 + 1, speech_ended_at=t0 + 2.5, emitted_at=t0 + 2.9)
    await broker.publish(question, subjects.transcript(call_id))
    timing = TurnTiming(speech_ended_at=t0 + 2.5, transcript_at=t0 + 2.9, first_chunk_at=t0 + 3.1,
                        first_audio_at=t0 + 3.2, edge_sent_at=t0 + 3.25, llm_provider="fake")
    for seq, text in enumerate(["Paris,", "the capital of France."]):
        chunk = ReplyChunk(call_id=call_id, turn_id="t1", seq=seq, text=text, final=seq == 1,
                           in_reply_to="u1", timing=timing)
        await broker.publish(chunk, subjects.reply(call_id))
    await broker.publish(CallEvent(call_id=call_id, name="turn.first_audio", turn_id="t1", timing=timing),
                         subjects.event(call_id))
    await broker.publish(CallEnd(call_id=call_id, reason="caller hung up"), subjects.CALLS_END)


async def test_call_record_holds_every_turn_with_latencies_and_survives_restart(nats_server) -> None:
    settings = MemorySettings(nats_url=nats_server.url)
    service = MemoryService(settings)
    await service.open_store()
    await service.broker.start()
    await settled(service.broker._connection)  # its subscriptions are in place (doubles.bus)
    client = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await client.start()
    try:
        await _run_call(client, nats_server.url, "CAtest1")
        record = await wait_for_ended(nats_server.url, "CAtest1")
    finally:
        await client.stop()
        await service.broker.stop()

    assert record is not None and record.end_reason == "caller hung up"
    assert [(t.speaker, t.text) for t in record.turns] == [
        ("agent", "Hi, I'm an AI."),
        ("caller", "What is the capital of France?"),
        ("agent", "Paris, the capital of France."),
    ]
    answer = record.turns[2]
    assert answer.latency_ms == {"stt": 400.0, "brain": 200.0, "tts": 100.0, "edge": 50.0, "total": 750.0}
    assert "mouth-to-ear 750 ms" in format_record(record)

    # A restarted nats-server (same store) and a fresh memory service still have the call.
    nats_server.stop()
    nats_server.start()
    service = MemoryService(settings)
    await service.open_store()
    await service.broker.start()
    await settled(service.broker._connection)  # its subscriptions are in place (doubles.bus)
    try:
        calls = await list_calls(nats_server.url)
        again = await get_call(nats_server.url, "CAtest1")
    finally:
        await service.broker.stop()
    assert [c.call_id for c in calls] == ["CAtest1"] and calls[0].turns == 3
    assert again == record


async def test_daily_spend_per_agent_adds_up_across_calls(nats_server) -> None:
    from ringline.contracts.messages import SpendReply, SpendRequest

    service = MemoryService(MemorySettings(nats_url=nats_server.url))
    await service.open_store()
    await service.broker.start()
    await settled(service.broker._connection)  # its subscriptions are in place (doubles.bus)
    client = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await client.start()
    try:
        for call_id in ("CAspend1", "CAspend2"):
            await client.publish(CallStart(call_id=call_id, agent_id="sales"), subjects.CALLS_START)
            await _claimed(nats_server.url, call_id)
            usage = {"llm_model": "claude-haiku-4-5", "input_tokens": 100_000, "output_tokens": 0}
            await client.publish(CallEvent(call_id=call_id, name="turn.llm", turn_id="t", data={"usage": usage}),
                                 subjects.event(call_id))
            await client.publish(CallEnd(call_id=call_id), subjects.CALLS_END)
            await wait_for_ended(nats_server.url, call_id)
        reply = await client.request(SpendRequest(agent_id="sales"), subjects.MEMORY_SPEND_GET, timeout=5)
        other = await client.request(SpendRequest(agent_id="support"), subjects.MEMORY_SPEND_GET, timeout=5)
    finally:
        await client.stop()
        await service.broker.stop()
    from ringline.contracts.codec import unpack

    spend = SpendReply.model_validate(unpack(reply.body))
    assert spend.spent == 0.2  # two calls of 100k Haiku input tokens at $1/MTok
    assert SpendReply.model_validate(unpack(other.body)).spent == 0.0
