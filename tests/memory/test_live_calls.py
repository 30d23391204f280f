"""Calls in progress per agent, counted across memory replicas, for `max_concurrent_calls`."""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.contracts import subjects
from ringline.contracts.codec import unpack
from ringline.contracts.messages import CallEnd, CallStart, SpendReply, SpendRequest

from .conftest import claimed

pytestmark = pytest.mark.integration


async def _active(client, agent_id: str, call_id: str = "") -> int | None:
    reply = await client.request(SpendRequest(agent_id=agent_id, call_id=call_id), subjects.MEMORY_SPEND_GET,
                                 timeout=5)
    return SpendReply.model_validate(unpack(reply.body)).active_calls


async def test_live_calls_are_counted_across_replicas_without_the_asking_call(nats_server, memory, client) -> None:
    replicas = [await memory(), await memory()]
    url = nats_server.url
    for call_id in ("CAlive1", "CAlive2", "CAlive3"):
        await client.publish(CallStart(call_id=call_id, agent_id="sales"), subjects.CALLS_START)
        await claimed(url, call_id)
    await client.publish(CallStart(call_id="CAother", agent_id="support"), subjects.CALLS_START)
    await claimed(url, "CAother")
    # The queue group spread the calls; every replica answers with the same count.
    owners = {cid for service in replicas for cid in service.router.sessions}
    assert owners == {"CAlive1", "CAlive2", "CAlive3", "CAother"}

    assert await _active(client, "sales") == 3
    assert await _active(client, "sales", call_id="CAlive3") == 2  # the call asking is not counted
    assert await _active(client, "support") == 1
    assert await _active(client, "nobody") == 0

    await client.publish(CallEnd(call_id="CAlive1"), subjects.CALLS_END)
    for _ in range(50):
        if await _active(client, "sales") == 2:
            break
        await asyncio.sleep(0.05)
    assert await _active(client, "sales") == 2


async def test_a_crashed_replicas_calls_stop_counting_after_the_ttl(nats_server, memory, client) -> None:
    crashing = await memory(live_ttl_s=3.0)
    url = nats_server.url
    await client.publish(CallStart(call_id="CAcrash", agent_id="sales"), subjects.CALLS_START)
    await claimed(url, "CAcrash")
    # The replica dies without ending its call: its subscriptions and renewals just stop.
    session = crashing.router.sessions.pop("CAcrash")
    for task in list(session.bus._tasks):
        task.cancel()
    await crashing.broker.stop()
    crashing._stopped = True  # type: ignore[attr-defined]  (nothing to drain)
    survivor = await memory(live_ttl_s=3.0)
    died = time.monotonic()
    assert await _active(client, "sales") == 1
    while await _active(client, "sales") != 0:
        assert time.monotonic() - died < 8, "a dead replica's call kept counting"
        await asyncio.sleep(0.2)
    assert survivor.live is not None


async def test_a_long_call_keeps_counting_past_the_ttl(nats_server, memory, client) -> None:
    await memory(live_ttl_s=3.0)
    await client.publish(CallStart(call_id="CAlong", agent_id="sales"), subjects.CALLS_START)
    await claimed(nats_server.url, "CAlong")
    await asyncio.sleep(4.5)  # renewed every second
    assert await _active(client, "sales") == 1
