"""The simulated caller against the real edge over real HTTP and WebSocket, agent scripted on the bus."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator

import pytest
from faststream.nats import TestNatsBroker
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from ringline.caller import place_call, twilio_sim
from ringline.contracts import subjects
from ringline.contracts.messages import Control
from ringline.contracts.runtime import create_broker
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.service


async def test_a_scripted_conversation(memory_edge, helpers, tmp_path) -> None:
    agent = memory_edge.agent
    out = tmp_path / "agent.wav"
    result = await place_call(
        memory_edge.url,
        [helpers.tone_utterance("first"), helpers.tone_utterance("second")],
        caller="+15550001111", callee="+15550002222", agent="sales",
        out=out, nats_url=None, reply_timeout=5.0, quiet_s=0.5, max_reply_s=10.0,
    )
    assert result.ok, result.problems
    assert [t.speaker for t in result.turns] == ["agent", "caller", "agent", "caller", "agent"]
    greeting, replies = result.turns[0], result.replies
    assert greeting.turn_ids == ["greeting"] and greeting.mouth_to_ear_ms is None
    assert [r.turn_ids for r in replies] == [["reply1"], ["reply2"]]
    for reply in replies:
        # the agent answers 200 ms of silence + 150 ms of thinking after the speech ends
        assert 250 < reply.mouth_to_ear_ms < 1500, reply
        assert abs(reply.audio_s - 0.6) < 0.05
    # the edge saw a Twilio-shaped call
    (start,) = agent.starts
    assert start.call_id == result.call_sid and start.call_id.startswith("CA") and len(start.call_id) == 34
    assert (start.agent_id, start.caller, start.callee) == ("sales", "+15550001111", "+15550002222")
    assert start.stream_sid == result.stream_sid and start.stream_sid.startswith("MZ")
    # every mark came back as the caller finished hearing it
    assert [p.mark for p in agent.playbacks] == ["greeting:1", "reply1:1", "reply2:1"]
    for playback, turn in zip(agent.playbacks, [greeting, *replies], strict=True):
        assert playback.heard_at >= turn.started_at + 0.5  # not before the audio could have played
    assert [e.reason for e in agent.ends] == ["caller hung up"]
    assert result.ended_by == "caller"
    # continuous media, 50 frames a second, for the whole call
    seconds = result.ended_at - result.started_at
    assert agent.frames >= 40 * (seconds - 1.0)
    with wave.open(str(out)) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert abs(wav.getnframes() / 8000 - seconds) < 1.0


async def test_agent_hangs_up(memory_edge, helpers) -> None:
    memory_edge.agent.hang_up_after = 1
    result = await place_call(
        memory_edge.url, [helpers.tone_utterance("bye"), helpers.tone_utterance("anyone there?")],
        nats_url=None, reply_timeout=5.0, quiet_s=2.0, max_reply_s=10.0,
    )
    assert result.ended_by == "agent"
    assert any("ended before the caller said 'anyone there?'" in p for p in result.problems), result.problems
    assert [e.reason for e in memory_edge.agent.ends] == ["agent hung up"]


async def test_no_greeting_and_no_reply_are_reported_not_hung_on(memory_edge, helpers) -> None:
    agent = memory_edge.agent
    agent.greeting_s = 0.0  # an empty greeting: no audio at all
    agent.think_s = 30.0  # never answers in time
    result = await place_call(memory_edge.url, [helpers.tone_utterance("hello?")], nats_url=None,
                              reply_timeout=1.5, quiet_s=0.3)
    assert not result.ok
    assert any("no greeting" in p for p in result.problems)
    assert any("no reply to 'hello?'" in p for p in result.problems)
    assert result.ended_at - result.started_at < 8


async def test_unreachable_edge_is_a_problem_not_a_crash(helpers) -> None:
    result = await place_call(f"http://127.0.0.1:{helpers.free_port()}", [], nats_url=None, connect_timeout=2.0)
    assert not result.ok and result.ended_by == "error"
    assert result.problems[0].startswith("call failed")


TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def signed_edge(monkeypatch, edge_settings, helpers) -> AsyncIterator[str]:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    settings = TelephonySettings(host=edge_settings.host, port=edge_settings.port)
    assert settings.twilio_auth_token is not None
    broker = create_broker(settings, "telephony")
    agent = helpers.ScriptedAgent(broker)
    agent.attach()
    async for url in helpers.serve_edge(settings, broker, TestNatsBroker):
        yield url
    await agent.close()


async def test_signed_call_over_real_sockets(signed_edge, helpers) -> None:
    result = await place_call(signed_edge, [helpers.tone_utterance("hi")], auth_token=TOKEN, nats_url=None,
                              reply_timeout=5.0, quiet_s=0.3)
    assert result.ok, result.problems
    forged = await place_call(signed_edge, [], auth_token="not-the-token", nats_url=None)
    assert forged.problems == ["voice webhook answered 403: invalid Twilio signature"]


async def test_real_socket_refuses_forged_signature_and_oversize(signed_edge) -> None:
    ws_url = signed_edge.replace("http://", "ws://") + "/twilio/stream"
    async with connect(ws_url, additional_headers={"X-Twilio-Signature": "Zm9yZ2Vk"}) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1008
    good = {"X-Twilio-Signature": twilio_sim.signature(TOKEN, ws_url)}
    async with connect(ws_url, additional_headers=good, max_size=None) as ws:
        await ws.send("x" * (65 * 1024))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 1009


async def test_edge_shutdown_mid_call_ends_it_cleanly(edge_settings, helpers) -> None:
    broker = create_broker(edge_settings, "telephony")
    agent = helpers.ScriptedAgent(broker)
    agent.attach()
    server = helpers.serve_edge(edge_settings, broker, TestNatsBroker)
    url = await server.__anext__()
    call = asyncio.create_task(place_call(url, [helpers.tone_utterance("long", seconds=4.0)], nats_url=None,
                                          reply_timeout=5.0))
    await asyncio.sleep(2.0)
    await server.aclose()  # uvicorn shuts down: sockets get 1012, then the lifespan ends
    result = await asyncio.wait_for(call, 15)
    assert [e.reason for e in agent.ends] == ["service shutting down"]
    assert result.ended_by == "agent"
    assert any("1012" in p for p in result.problems), result.problems
    await agent.close()


async def test_interrupt_clears_what_the_caller_has_not_heard(memory_edge, helpers) -> None:
    agent = memory_edge.agent
    agent.greeting_s = 3.0

    async def interrupt_greeting() -> None:
        while not agent.starts:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.8)
        call_id = agent.starts[0].call_id
        await agent.broker.publish(Control(call_id=call_id, action="interrupt", turn_id="greeting"),
                                   subjects.control(call_id))

    interrupter = asyncio.create_task(interrupt_greeting())
    result = await place_call(memory_edge.url, [], nats_url=None, reply_timeout=5.0, quiet_s=0.3)
    await interrupter
    (greeting,) = result.turns
    assert greeting.interrupted and greeting.audio_s == 3.0  # all of it was sent, ...
    (playback,) = agent.playbacks  # ... the pending mark came back on `clear`, long before 3 s
    assert playback.mark == "greeting:1" and playback.heard_at - greeting.started_at < 1.5
