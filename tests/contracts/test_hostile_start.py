"""A `calls.start` that is plain JSON, or huge, is refused with a clear log line and becomes no
call: no stage claims it (here the real memory service, a stage like any other), no record."""

from __future__ import annotations

import asyncio
import json
import logging

import nats
import pytest

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack
from ringline.contracts.messages import CallStart
from ringline.services.memory.app import MemoryService
from ringline.services.memory.settings import MemorySettings

pytestmark = pytest.mark.integration

GOOD = "CAgood0001"


@pytest.fixture
async def memory(nats_server):
    service = MemoryService(MemorySettings(nats_url=nats_server.url, summary_wait_s=0.0), env={})
    await service.open_store()
    await service.broker.start()
    await asyncio.sleep(0.1)
    yield service
    await service.shutdown()
    await service.broker.stop()


async def _wait_claimed(service: MemoryService, call_id: str, timeout: float = 5.0) -> bool:
    deadline = asyncio.get_running_loop().time() + timeout
    while call_id not in service.router.sessions:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


@pytest.mark.parametrize("case", ["json", "json-with-content-type", "huge-custom", "huge-body", "not-a-map"])
async def test_a_hostile_call_start_becomes_no_call(nats_server, memory: MemoryService, case: str, caplog) -> None:
    call_id = "CAhostile01"
    start = CallStart(call_id=call_id, caller="+15550100001").model_dump(mode="json")
    body, headers = {
        "json": (json.dumps(start).encode(), {}),
        "json-with-content-type": (json.dumps(start).encode(), {"content-type": CONTENT_TYPE}),
        "huge-custom": (pack({**start, "custom": {f"k{i}": "x" * 100 for i in range(500)}}),
                        {"content-type": CONTENT_TYPE}),
        "huge-body": (pack({**start, "caller": "9" * 300_000}), {"content-type": CONTENT_TYPE}),
        "not-a-map": (pack([1, 2, 3]), {"content-type": CONTENT_TYPE}),
    }[case]
    nc = await nats.connect(nats_server.url)
    try:
        with caplog.at_level(logging.WARNING):
            await nc.publish(subjects.CALLS_START, body, headers=headers)
            # A well-formed start right after it is claimed: the stage is alive and well.
            good = pack(CallStart(call_id=GOOD))
            await nc.publish(subjects.CALLS_START, good, headers={"content-type": CONTENT_TYPE})
            await nc.flush()
            assert await _wait_claimed(memory, GOOD), "the stage stopped claiming calls"
            await asyncio.sleep(0.2)
    finally:
        await nc.close()
    assert call_id not in memory.router.sessions, f"a {case} start became a call"
    refusals = [r.getMessage() for r in caplog.records if "bad message" in r.getMessage()]
    assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
    assert subjects.CALLS_START in refusals[0]
    assert "xxxx" not in refusals[0] and "99999" not in refusals[0], "the log repeats what the message carried"
