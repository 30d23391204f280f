"""Caller -> edge -> real nats-server -> scripted agent, and the call record by request/reply."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace

import pytest

from ringline.caller import place_call
from ringline.caller.report import format_result
from ringline.contracts import subjects
from ringline.contracts.messages import (
    CallEnd,
    CallEvent,
    CallGetReply,
    CallGetRequest,
    CallRecord,
    CallStart,
    TurnRecord,
    TurnTiming,
)
from ringline.contracts.runtime import ServiceSettings, create_broker

pytestmark = pytest.mark.integration


@pytest.fixture
def nats_url(nats_server) -> str:
    return nats_server.url


class FakeMemory:
    """Keeps what the edge reports and answers `memory.calls.get` like the memory service."""

    def __init__(self, broker) -> None:
        self.records: dict[str, CallRecord] = {}
        self.timings: dict[str, TurnTiming] = {}
        broker.subscriber(subjects.CALLS_START)(self.on_start)
        broker.subscriber(subjects.CALLS_END)(self.on_end)
        broker.subscriber(subjects.EVENT_WILDCARD)(self.on_event)
        broker.subscriber(subjects.MEMORY_CALLS_GET)(self.on_get)

    async def on_start(self, call: CallStart) -> None:
        self.records[call.call_id] = CallRecord(call_id=call.call_id, agent_id=call.agent_id,
                                                caller=call.caller, started_at=call.started_at)

    async def on_event(self, event: CallEvent) -> None:
        if event.name == "turn.first_audio" and event.timing is not None:
            self.timings[event.turn_id] = event.timing

    async def on_end(self, end: CallEnd) -> None:
        record = self.records[end.call_id]
        turns = []
        for turn_id, timing in self.timings.items():
            if turn_id.startswith("reply"):
                n = turn_id.removeprefix("reply")
                turns.append(TurnRecord(turn_id=f"u{n}", speaker="caller", text=f"heard utterance {n}"))
                turns.append(TurnRecord(turn_id=turn_id, speaker="agent", text=f"answer {n}", in_reply_to=f"u{n}",
                                        latency_ms=timing.stages_ms()))
            else:
                turns.append(TurnRecord(turn_id=turn_id, speaker="agent", text="Hello, how can I help?"))
        self.records[end.call_id] = record.model_copy(update={"turns": turns, "ended_at": end.ended_at,
                                                              "end_reason": end.reason})

    async def on_get(self, request: CallGetRequest) -> CallGetReply:
        record = self.records.get(request.call_id)
        return CallGetReply(found=record is not None, record=record)


@pytest.fixture
async def real_edge(nats_url, edge_settings, helpers) -> AsyncIterator[SimpleNamespace]:
    settings = edge_settings.model_copy(update={"nats_url": nats_url})
    agent_broker = create_broker(ServiceSettings(nats_url=nats_url), "agent")
    agent = helpers.ScriptedAgent(agent_broker)
    agent.attach()
    memory = FakeMemory(agent_broker)
    await agent_broker.start()
    edge_broker = create_broker(settings, "telephony")
    try:
        async for url in helpers.serve_edge(settings, edge_broker, helpers.running_broker):
            yield SimpleNamespace(url=url, agent=agent, memory=memory, nats_url=nats_url)
    finally:
        await agent.close()
        await agent_broker.stop()


async def test_call_over_real_nats_with_the_record(real_edge, helpers, tmp_path) -> None:
    result = await place_call(
        real_edge.url, [helpers.tone_utterance("one"), helpers.tone_utterance("two")],
        nats_url=real_edge.nats_url, out=tmp_path / "agent.wav", reply_timeout=5.0, quiet_s=0.5,
    )
    print(format_result(result))
    assert result.ok, result.problems
    assert result.record is not None and result.record.call_id == result.call_sid
    greeting, first, reply1, second, reply2 = result.turns
    assert greeting.text == "Hello, how can I help?"
    assert (first.text, first.heard_as, reply1.text) == ("one", "heard utterance 1", "answer 1")
    assert (second.heard_as, reply2.text) == ("heard utterance 2", "answer 2")
    for reply in (reply1, reply2):
        # the scripted stages: stt 50, brain 200, tts 50, then the edge's own share
        assert (reply.stages_ms["stt"], reply.stages_ms["brain"], reply.stages_ms["tts"]) == (50.0, 200.0, 50.0)
        assert 0 < reply.stages_ms["edge"] < 1000
        assert reply.mouth_to_ear_ms is not None and 250 < reply.mouth_to_ear_ms < 1500
    assert [e.reason for e in real_edge.agent.ends] == ["caller hung up"]
    assert [p.mark for p in real_edge.agent.playbacks] == ["greeting:1", "reply1:1", "reply2:1"]
    as_json = json.loads(json.dumps(result.to_dict()))  # what `ringline call --json` prints
    assert as_json["ok"] and as_json["record"]["call_id"] == result.call_sid
    assert as_json["turns"][2]["stages_ms"]["brain"] == 200.0


async def test_no_memory_service_means_caller_numbers_only(nats_url, memory_edge, helpers) -> None:
    result = await place_call(memory_edge.url, [helpers.tone_utterance("hi")], nats_url=nats_url,
                              reply_timeout=5.0, quiet_s=0.3, record_timeout=1.0)
    assert result.ok and result.record is None
    assert "no memory service" in result.record_error
    assert "caller-side numbers only" in format_result(result)
