"""A call that never drops, on the real stack: two edges behind the local proxy, one of each
stage on the offline models, a real nats-server. The edge serving the call is killed (-9) while
the caller pauses between two questions; the simulated caller follows `<Connect action>` as
Twilio does, reconnects through the proxy to the other edge, asks its second question and hears
the answer. The memory service keeps one record of one call with both questions in it.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from ringline.caller import Say, Scenario, Wait, place_call, prepare
from ringline.caller.report import format_result
from ringline.contracts import subjects
from ringline.contracts.events import TURN_FIRST_AUDIO
from ringline.contracts.messages import CallEvent
from ringline.contracts.runtime import ServiceSettings, create_broker
from ringline.records import list_calls
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

FIRST = "What is the capital city of France?"
SECOND = "What is the capital of Italy?"


@pytest.fixture(scope="module")
def two_edges(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The five services with two edges; anonymous NATS so the test can watch the events."""
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline"), quiet=True, auth=False,
                                replicas={"telephony": 2})
    stack.start(timeout=300)
    yield stack
    stack.stop()


async def _serving_edge(stack: Stack) -> str:
    async with httpx.AsyncClient(timeout=2.0) as client:
        for key in stack.replica_keys("telephony"):
            body = (await client.get(f"http://127.0.0.1:{stack.port_of(key)}/health")).json()
            if body.get("active_calls"):
                return key
    raise AssertionError("no edge serves the call")


async def _call_and_kill(stack: Stack, scenario: Scenario):
    broker = create_broker(ServiceSettings(nats_url=stack.url), "test")
    answers: list[float] = []

    @broker.subscriber(subjects.EVENT_WILDCARD)
    async def on_event(event: CallEvent) -> None:
        if event.name == TURN_FIRST_AUDIO and "greet" not in event.turn_id:
            answers.append(time.monotonic())

    await broker.start()
    try:
        task = asyncio.create_task(place_call(stack.edge_url, scenario, nats_url=stack.url, reply_timeout=40.0,
                                              record_timeout=15.0, max_reply_s=60.0))
        deadline = time.monotonic() + 120
        while not answers:
            assert time.monotonic() < deadline and not task.done(), "the first question was not answered"
            await asyncio.sleep(0.05)
        await asyncio.sleep(4.0)  # its answer has played (or nearly); the caller is in its pause
        killed = await _serving_edge(stack)
        stack.kill(killed, signal.SIGKILL)
        return killed, await task
    finally:
        await broker.stop()


def test_killing_the_edge_mid_call_reconnects_and_the_next_question_is_answered(two_edges: Stack, voice) -> None:
    scenario = prepare(Scenario([Say(FIRST), Wait(ms=6000), Say(SECOND)]), voice)
    killed, result = asyncio.run(_call_and_kill(two_edges, scenario))
    print(format_result(result))

    assert result.ok, result.problems
    [drop] = result.reconnects
    assert drop.reconnected_at is not None, drop.error
    print(f"killed {killed}: reconnected in {drop.reconnect_ms} ms, gap {drop.gap_ms} ms")
    caller = [t for t in result.turns if t.speaker == "caller"]
    agent = [t for t in result.turns if t.speaker == "agent" and t.mouth_to_ear_ms is not None]
    assert len(caller) == 2 and len(agent) == 2  # both questions answered, the second after the failover
    assert agent[-1].started_at > drop.reconnected_at
    record = result.record
    assert record is not None, result.record_error
    assert record.call_id == result.call_sid and record.ended_at
    heard = " ".join(t.text for t in record.turns if t.speaker == "caller").lower()
    assert "france" in heard and "italy" in heard  # one record holds both sides of the failover
    calls = asyncio.run(list_calls(two_edges.url, limit=50))
    assert [c.call_id for c in calls].count(result.call_sid) == 1
