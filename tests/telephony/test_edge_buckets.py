"""The edge's key-value buckets on a real nats-server when an operator changes their TTL: a
replica started with the new setting still records and reads what the others wrote (the bucket is
used as it was declared, with a warning), so the action webhook still hangs up calls that are over
and outbound calls still find their context."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from ringline.contracts.runtime import create_broker
from ringline.contracts.runtime.settings import ServiceSettings
from ringline.services.telephony.failover import EndedCalls
from ringline.services.telephony.outbound import OutboundContext, OutboundStore, new_outbound_id

pytestmark = pytest.mark.integration


async def test_ended_calls_survive_a_changed_ttl(nats_server: Any, caplog: pytest.LogCaptureFixture) -> None:
    old, new = (create_broker(ServiceSettings(nats_url=nats_server.url), f"edge-{n}") for n in (1, 2))
    await old.start()
    await new.start()
    try:
        await EndedCalls(old, "ringline-ended", ttl_s=3600.0).mark("CAended1", "caller hung up")
        redeployed = EndedCalls(new, "ringline-ended", ttl_s=600.0)  # the operator lowered ended_ttl_s
        with caplog.at_level(logging.WARNING):
            await redeployed.mark("CAended2", "agent hung up")
        assert await redeployed.is_over("CAended1"), "a call another replica ended would be reconnected"
        assert await EndedCalls(old, "ringline-ended", ttl_s=3600.0).is_over("CAended2")
        assert any("could not be declared as asked" in r.getMessage() for r in caplog.records)
        assert not any("failed" in r.getMessage() for r in caplog.records), [r.getMessage() for r in caplog.records]
    finally:
        await old.stop()
        await new.stop()


async def test_outbound_contexts_survive_a_changed_ttl(nats_server: Any) -> None:
    old, new = (create_broker(ServiceSettings(nats_url=nats_server.url), f"edge-{n}") for n in (1, 2))
    await old.start()
    await new.start()
    try:
        context = OutboundContext(id=new_outbound_id(), to="+15550100001", caller_id="+15550100002",
                                  agent="default", purpose="call back about the order")
        await OutboundStore(old, "ringline-outbound", ttl_s=900.0).put(context)
        found = await OutboundStore(new, "ringline-outbound", ttl_s=300.0).get(context.id)
        assert found == context
    finally:
        await old.stop()
        await new.stop()
