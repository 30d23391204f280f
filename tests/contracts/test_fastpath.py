"""Audio frames beside FastStream, on a real nats-server: a frame published on the fast path
reaches both a fast subscriber and an ordinary FastStream one, in order; a malformed body is
dropped without stopping the stream; once the call's bus closes nothing more arrives."""

from __future__ import annotations

import asyncio

import pytest
from faststream.nats import NatsBroker

from ringline.contracts import subjects
from ringline.contracts.codec import MsgpackCodec
from ringline.contracts.messages import AudioFrame
from ringline.contracts.runtime import CallBus
from ringline.contracts.runtime.fastpath import publish_frame, subscribe_frames

pytestmark = pytest.mark.integration

CALL = "CAfast"


async def wait_until(condition, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_frames_flow_in_order_to_fast_and_faststream_subscribers(nats_server) -> None:
    broker = NatsBroker(nats_server.url, codec=MsgpackCodec())
    ordinary: list[AudioFrame] = []

    @broker.subscriber(subjects.audio_in(CALL))
    async def record(frame: AudioFrame) -> None:
        ordinary.append(frame)

    async with broker:
        await broker.start()
        listener, sender = CallBus(broker, CALL), CallBus(broker, CALL)
        fast: list[AudioFrame] = []

        async def on_frame(frame: AudioFrame) -> None:
            fast.append(frame)

        await subscribe_frames(listener, subjects.audio_in(CALL), AudioFrame, on_frame)
        for seq in range(50):
            await publish_frame(sender, AudioFrame(call_id=CALL, seq=seq, payload=bytes([seq]) * 160),
                                subjects.audio_in(CALL))
        await broker._connection.publish(subjects.audio_in(CALL), b"\xc1not msgpack")  # a broken body
        await publish_frame(sender, AudioFrame(call_id=CALL, seq=50, payload=b"\x00" * 160), subjects.audio_in(CALL))
        await wait_until(lambda: len(fast) == 51 and len(ordinary) == 51)
        assert [f.seq for f in fast] == list(range(51)) == [f.seq for f in ordinary]
        assert fast[7].payload == bytes([7]) * 160 and isinstance(fast[7].payload, bytes)

        await listener.close()
        await publish_frame(sender, AudioFrame(call_id=CALL, seq=51, payload=b"\x00" * 160), subjects.audio_in(CALL))
        await wait_until(lambda: len(ordinary) == 52)
        assert len(fast) == 51
        await sender.close()
        await publish_frame(sender, AudioFrame(call_id=CALL, seq=52, payload=b"\x00" * 160), subjects.audio_in(CALL))
        await asyncio.sleep(0.2)
        assert len(ordinary) == 52  # a closed call's bus publishes nothing
