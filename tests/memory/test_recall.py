"""Caller memory in the memory service, on a real nats-server: one memory per agent and caller,
never shared between agents, merged call by call, forgotten on request, kept across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from faststream.nats import NatsBroker
from nats.errors import NoRespondersError

from ringline.contracts import subjects
from ringline.contracts.codec import MsgpackCodec, unpack
from ringline.contracts.messages.recall import (
    CallNotes,
    Fact,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
    RecallListReply,
    RecallListRequest,
    RecallPutReply,
    RecallPutRequest,
)
from ringline.services.memory.app import MemoryService
from ringline.services.memory.settings import MemorySettings

pytestmark = pytest.mark.integration

SAM = "+1 (555) 010-0001"


async def start_memory(url: str) -> MemoryService:
    service = MemoryService(MemorySettings(nats_url=url))
    await service.open_store()
    await service.broker.start()
    return service


@pytest.fixture
async def bus(nats_server) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await broker.start()
    yield broker
    await broker.stop()


async def ask(bus: NatsBroker, request, subject: str, reply_type):
    for _ in range(150):  # the service (or its process) may subscribe a moment after it starts
        try:
            message = await bus.request(request, subject, timeout=5)
            return reply_type.model_validate(unpack(message.body))
        except NoRespondersError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nobody answers on {subject}")


async def put(bus: NatsBroker, agent: str, call_id: str, summary: str, facts: list[Fact],
              caller: str = SAM, followed_up: tuple[str, ...] = ()) -> RecallPutReply:
    notes = CallNotes(call_id=call_id, agent_id=agent, caller=caller, summary=summary, facts=facts,
                      followed_up=list(followed_up))
    return await ask(bus, RecallPutRequest(notes=notes), subjects.MEMORY_RECALL_PUT, RecallPutReply)


async def get(bus: NatsBroker, agent: str, caller: str = SAM) -> RecallGetReply:
    return await ask(bus, RecallGetRequest(agent_id=agent, caller=caller), subjects.MEMORY_RECALL_GET,
                     RecallGetReply)


async def test_memory_is_per_agent_and_merges_call_by_call(nats_server, bus) -> None:
    service = await start_memory(nats_server.url)
    try:
        first = await put(bus, "reception", "CA1", "Sam booked a table for Tuesday.",
                          [Fact(kind="name", text="Sam"), Fact(kind="open", text="table for Tuesday")])
        assert first.ok and first.memory is not None and first.memory.calls == 1
        # Another agent knows nothing about the same number, and what it learns stays its own.
        assert (await get(bus, "sales")).found is False
        await put(bus, "sales", "CA2", "Asked for a quote.", [Fact(kind="name", text="Samuel")])
        # The same number written differently is the same caller.
        reception = (await get(bus, "reception", "+15550100001")).memory
        sales = (await get(bus, "sales")).memory
        assert reception is not None and sales is not None
        assert (reception.name, sales.name) == ("Sam", "Samuel")
        assert reception.caller == "+15550100001" and reception.summary == "Sam booked a table for Tuesday."

        # A second call: the follow-up was asked, so that open item is done; a new preference stays.
        second = await put(bus, "reception", "CA3", "Sam said Tuesday went well.",
                           [Fact(kind="preference", text="a window seat")], followed_up=("table for Tuesday",))
        memory = second.memory
        assert memory is not None and memory.calls == 2 and memory.name == "Sam"
        assert memory.of("open") == [] and memory.of("preference") == ["a window seat"]
        assert memory.earlier == ["Sam booked a table for Tuesday."]
        # Recording the same call again does not count it twice.
        again = await put(bus, "reception", "CA3", "Sam said Tuesday went well.", [])
        assert again.memory is not None and again.memory.calls == 2

        listed = await ask(bus, RecallListRequest(agent_id="reception"), subjects.MEMORY_RECALL_LIST, RecallListReply)
        assert [(m.agent_id, m.caller) for m in listed.memories] == [("reception", "+15550100001")]
        everyone = await ask(bus, RecallListRequest(), subjects.MEMORY_RECALL_LIST, RecallListReply)
        assert sorted(m.agent_id for m in everyone.memories) == ["reception", "sales"]

        # Forgetting is per agent too.
        gone = await ask(bus, RecallForgetRequest(agent_id="sales", caller=SAM), subjects.MEMORY_RECALL_FORGET,
                         RecallForgetReply)
        assert gone.forgotten and (await get(bus, "sales")).found is False
        assert (await get(bus, "reception")).found is True
        twice = await ask(bus, RecallForgetRequest(agent_id="sales", caller=SAM), subjects.MEMORY_RECALL_FORGET,
                          RecallForgetReply)
        assert twice.forgotten is False
    finally:
        await service.shutdown()
        await service.broker.stop()


async def test_callers_without_a_number_and_odd_agent_ids_are_never_remembered(nats_server, bus) -> None:
    service = await start_memory(nats_server.url)
    try:
        anonymous = await put(bus, "reception", "CA1", "Someone called.", [], caller="anonymous")
        assert not anonymous.ok and "not remembered" in anonymous.error
        assert (await get(bus, "reception", "")).found is False
        sneaky = await get(bus, "reception.15550100001", SAM)  # an id that would reach into another key
        assert sneaky.found is False and sneaky.error
        wildcard = await ask(bus, RecallListRequest(agent_id="*"), subjects.MEMORY_RECALL_LIST, RecallListReply)
        assert wildcard.memories == []
    finally:
        await service.shutdown()
        await service.broker.stop()


async def test_memory_survives_a_restart_of_nats_and_of_the_memory_service(nats_server) -> None:
    service = await start_memory(nats_server.url)
    client = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await client.start()
    try:
        await put(client, "reception", "CA1", "Sam booked a table.", [Fact(kind="name", text="Sam")])
    finally:
        await client.stop()
        await service.shutdown()
        await service.broker.stop()

    nats_server.stop()
    nats_server.start()  # the same store directory
    service = await start_memory(nats_server.url)
    client = NatsBroker(nats_server.url, codec=MsgpackCodec())
    await client.start()
    try:
        memory = (await get(client, "reception")).memory
    finally:
        await client.stop()
        await service.shutdown()
        await service.broker.stop()
    assert memory is not None and memory.name == "Sam" and memory.calls == 1


def test_the_cli_lists_shows_and_forgets_remembered_callers(nats_server, capsys, tmp_path) -> None:
    """`ringline memory` against a memory service process on a real nats-server."""
    import os
    import subprocess
    import sys

    from ringline.cli import main

    env = {**os.environ, "NATS_URL": nats_server.url, "RINGLINE_MEMORY_PORT": "0"}
    log = (tmp_path / "memory.log").open("w")
    service = subprocess.Popen([sys.executable, "-m", "ringline.services.memory"], env=env, stdout=log,
                               stderr=subprocess.STDOUT)

    async def remember() -> None:
        client = NatsBroker(nats_server.url, codec=MsgpackCodec())
        await client.start()
        try:
            await put(client, "reception", "CA1", "Sam booked a table for Tuesday.",
                      [Fact(kind="name", text="Sam"), Fact(kind="open", text="book a table for Tuesday")])
            await put(client, "sales", "CA2", "Asked for a quote.", [], caller="+15550100002")
        finally:
            await client.stop()

    try:
        asyncio.run(remember())
        url = ["--nats", nats_server.url]
        assert main(["memory", *url]) == 0
        listed = capsys.readouterr().out
        assert "reception" in listed and "+15550100001" in listed and "Sam booked a table" in listed
        assert "sales" in listed
        assert main(["memory", "--agent", "sales", *url]) == 0
        assert "+15550100001" not in capsys.readouterr().out
        assert main(["memory", "show", SAM, "--agent", "reception", *url]) == 0
        shown = capsys.readouterr().out
        assert "name:      Sam" in shown and "open:      book a table for Tuesday" in shown
        assert main(["memory", "show", SAM, "--agent", "sales", *url]) == 1  # another agent's caller
        assert main(["memory", "forget", SAM, *url]) == 2  # the agent must be named
        assert main(["memory", "forget", SAM, "--agent", "reception", *url]) == 0
        assert "agent reception forgot +1 (555) 010-0001" in capsys.readouterr().out
        assert main(["memory", "show", SAM, "--agent", "reception", *url]) == 1
    finally:
        service.terminate()
        service.wait(10)
        log.close()
