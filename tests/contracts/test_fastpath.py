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


def recording_broker(url: str) -> tuple[NatsBroker, list[AudioFrame]]:
    """A broker with an ordinary FastStream subscriber on the call's audio, and what it receives."""
    broker = NatsBroker(url, codec=MsgpackCodec())
    ordinary: list[AudioFrame] = []

    @broker.subscriber(subjects.audio_in(CALL))
    async def record(frame: AudioFrame) -> None:
        ordinary.append(frame)

    return broker, ordinary


async def test_frames_flow_in_order_to_fast_and_faststream_subscribers(nats_server) -> None:
    broker, ordinary = recording_broker(nats_server.url)

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


async def test_a_frame_publisher_sends_what_publish_frame_sends_without_a_model_per_frame(nats_server) -> None:
    """Byte for byte the body of the model with those fields; both kinds of subscriber read it;
    a field the message does not have is refused, not sent."""
    from ringline.contracts.codec import pack
    from ringline.contracts.runtime.fastpath import FramePublisher

    broker, ordinary = recording_broker(nats_server.url)

    async with broker:
        await broker.start()
        listener, sender = CallBus(broker, CALL), CallBus(broker, CALL)
        fast: list[AudioFrame] = []
        bodies: list[bytes] = []

        async def on_frame(frame: AudioFrame) -> None:
            fast.append(frame)

        await subscribe_frames(listener, subjects.audio_in(CALL), AudioFrame, on_frame)
        raw = await broker._connection.subscribe(subjects.audio_in(CALL))
        frames = FramePublisher(sender, subjects.audio_in(CALL), AudioFrame(call_id=CALL, seq=0, payload=b"\xff"))
        for seq in range(20):
            await frames.publish(seq=seq, payload=bytes([seq]) * 160, captured_at=1000.0 + seq)
        with pytest.raises(TypeError):
            await frames.publish(sequence=3)
        await wait_until(lambda: len(fast) == 20 and len(ordinary) == 20)
        for _ in range(20):
            bodies.append((await raw.next_msg(timeout=2)).data)
        expected = [pack(AudioFrame(call_id=CALL, seq=seq, payload=bytes([seq]) * 160, captured_at=1000.0 + seq))
                    for seq in range(20)]
        assert bodies == expected
        assert [(f.seq, f.payload[0], f.captured_at) for f in fast] == [(s, s, 1000.0 + s) for s in range(20)]
        assert [f.seq for f in ordinary] == list(range(20))
        await sender.close()
        await frames.publish(seq=99, payload=b"\x00", captured_at=1.0)
        await asyncio.sleep(0.2)
        assert len(fast) == 20  # a closed call's bus publishes nothing
        await listener.close()
