"""Calls that never drop, at the edge: two real edge processes behind the local proxy, a real
nats-server, the simulated caller following `<Connect action>` as Twilio does, and a stand-in
agent on the bus (tests/doubles/bus_agent.py) in place of stt + brain + tts.

Kill -9 the edge serving a call: the caller reconnects through the action URL to the other edge,
the next question is answered, and the call is still one call (one `calls.start`, one
`calls.end`). SIGTERM it instead: it turns unready, its call goes on until the drain deadline
(no 1012 close), then its stream is handed over and the call reconnects. A call that is over
gets `<Hangup/>` at the action URL.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from ringline.caller import Say, Scenario, Wait, place_call, twilio_sim
from ringline.caller.report import format_result
from ringline.contracts import subjects
from ringline.contracts.messages import Control
from ringline.contracts.runtime import ServiceSettings, create_broker
from ringline.stack import Stack

from doubles.bus_agent import BusAgent, tone

pytestmark = pytest.mark.integration

DRAIN_DEADLINE_S = 3.0


@pytest.fixture
def edges(tmp_path: Path) -> Iterator[Stack]:
    """nats-server and two edges behind the proxy on the stack's edge port (no other stage)."""
    stack = Stack.on_free_ports(data_dir=tmp_path, quiet=True, services=("telephony",), auth=False,
                                replicas={"telephony": 2},
                                env={"RINGLINE_TELEPHONY_DRAIN_DEADLINE_S": str(DRAIN_DEADLINE_S)})
    stack.start(timeout=60)
    yield stack
    stack.stop()


@pytest.fixture
async def agent(edges: Stack) -> AsyncIterator[BusAgent]:
    broker = create_broker(ServiceSettings(nats_url=edges.url), "agent")
    agent = BusAgent(broker)
    agent.attach()
    await broker.start()
    try:
        yield agent
    finally:
        await agent.close()
        await broker.stop()


def tone_utterance(label: str):
    import numpy as np

    from ringline.caller import from_pcm

    return from_pcm(np.concatenate([tone(0.6, 330.0), np.zeros(800, np.int16)]), 8000, label=label, text=label)


def says(*steps: str | int) -> Scenario:
    """Words (a tone each) and waits (ms), in order."""
    out = []
    for step in steps:
        if isinstance(step, int):
            out.append(Wait(ms=step))
        else:
            utterance = tone_utterance(step)
            out.append(Say(utterance, utterance=utterance))
    return Scenario(out)


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def health(stack: Stack, key: str) -> tuple[int, dict]:
    async with httpx.AsyncClient(timeout=2.0) as client:
        response = await client.get(f"http://127.0.0.1:{stack.port_of(key)}/health")
        return response.status_code, response.json()


async def serving_edge(stack: Stack) -> str:
    """The edge replica that holds the one live call."""
    for key in stack.replica_keys("telephony"):
        _, body = await health(stack, key)
        if body.get("active_calls"):
            return key
    raise AssertionError("no edge serves the call")


def call(stack: Stack, scenario: Scenario) -> asyncio.Task:
    return asyncio.create_task(place_call(stack.edge_url, scenario, nats_url=None, reply_timeout=8.0, quiet_s=0.4))


def answered(result) -> list[str]:
    return [t.turn_ids[0] for t in result.turns if t.speaker == "agent" and t.turn_ids]


async def test_a_killed_edge_s_call_reconnects_to_the_other_edge_and_goes_on(edges: Stack, agent: BusAgent) -> None:
    task = call(edges, says("one", 2500, "two"))
    await until(lambda: agent.replies >= 1)
    await asyncio.sleep(1.6)  # the reply has played; the caller is in its 2.5 s pause
    serving = await serving_edge(edges)
    edges.kill(serving, signal.SIGKILL)
    result = await task
    print(format_result(result))

    assert result.ok, result.problems
    [drop] = result.reconnects
    assert drop.reconnected_at is not None and drop.reconnect_ms is not None and drop.reconnect_ms < 3000
    assert answered(result)[-1] == "reply2"  # the next question was answered, on the other edge
    other = next(k for k in edges.replica_keys("telephony") if k != serving)
    assert [t.data["replica"] for t in agent.takeovers] == [f"{other}@{socket.gethostname()}"]
    assert len(agent.starts) == 1  # one call, not two
    await until(lambda: bool(agent.ends), 5.0)
    assert [e.reason for e in agent.ends] == ["caller hung up"]


async def test_sigterm_drains_the_call_until_the_deadline_then_it_reconnects(edges: Stack, agent: BusAgent) -> None:
    task = call(edges, says("one", 4000, "two"))
    await until(lambda: len(agent.starts) == 1)
    await asyncio.sleep(1.3)  # the greeting has played
    serving = await serving_edge(edges)
    termed_at = time.time()
    edges.kill(serving, signal.SIGTERM)
    await asyncio.sleep(0.5)
    status, body = await health(edges, serving)
    assert (status, body["status"], body["active_calls"]) == (503, "draining", 1)  # unready, still serving
    result = await task
    print(format_result(result))

    assert result.ok, result.problems
    [drop] = result.reconnects
    assert drop.close_code == 1001  # handed over, never uvicorn's 1012
    assert DRAIN_DEADLINE_S - 0.3 <= drop.dropped_at - termed_at <= DRAIN_DEADLINE_S + 2.0
    assert answered(result)[1:3] == ["reply1", "reply2"]  # reply1 during the drain, reply2 after it
    assert edges.process(serving).wait(10) is not None
    await until(lambda: bool(agent.ends), 5.0)
    assert len(agent.starts) == 1 and [e.reason for e in agent.ends] == ["caller hung up"]
    assert len(agent.handovers) == 1 and len(agent.takeovers) == 1


async def test_an_agent_hang_up_is_not_reconnected(edges: Stack, agent: BusAgent) -> None:
    task = call(edges, says("one", 5000))
    await until(lambda: agent.replies >= 1)
    await asyncio.sleep(1.6)
    call_id = agent.starts[0].call_id
    await agent.broker.publish(Control(call_id=call_id, action="hangup", reason="done"), subjects.control(call_id))
    result = await task
    await until(lambda: bool(agent.ends), 5.0)
    assert result.ended_by == "agent" and result.reconnects and result.reconnects[0].reconnected_at is None
    assert not agent.takeovers and [e.reason for e in agent.ends] == ["agent hung up"]
    # Twilio asking again later gets the same answer, on either edge.
    form = twilio_sim.action_form(call_id, "AC" + "0" * 32, "+15550100001", "+15550100002")
    async with httpx.AsyncClient(timeout=5.0) as client:
        for _ in range(2):
            response = await client.post(f"{edges.edge_url}/twilio/action?call={call_id}&agent=default", data=form)
            assert twilio_sim.read_action_twiml(response.text) is None
            assert "<Hangup" in response.text


def test_with_one_nats_user_per_service_the_edge_still_records_ended_calls(tmp_path: Path) -> None:
    """The edge's own NATS user (contracts/runtime/permissions.py) may use `ringline-edge-ended`:
    a call the caller hung up is answered `<Hangup/>` at its action URL, on either edge."""
    stack = Stack.on_free_ports(data_dir=tmp_path, quiet=True, services=("telephony",), replicas={"telephony": 2})
    stack.start(timeout=60)
    try:
        result = asyncio.run(place_call(stack.edge_url, [], nats_url=None, greeting_timeout=0.5))
        assert not result.reconnects  # the caller hung up: nothing to follow
        form = twilio_sim.action_form(result.call_sid, "AC" + "0" * 32, "+15550100001", "+15550100002")
        for _ in range(2):  # round-robin: each edge answers once
            response = httpx.post(f"{stack.edge_url}/twilio/action?call={result.call_sid}&agent=default", data=form)
            assert "<Hangup" in response.text, response.text
        logs = "".join((tmp_path / "logs" / f"{key}.log").read_text() for key in stack.replica_keys("telephony"))
        assert "recording its end for the action webhook failed" not in logs
        assert "Permissions Violation" not in logs
    finally:
        stack.stop()
