"""The speaking order of reply chunks, with a fake clock."""

from __future__ import annotations

import asyncio

import pytest
from opentelemetry.context import Context

from ringline.contracts.messages import ReplyChunk
from ringline.services.tts.turns import TurnQueue

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def chunk(turn: str, seq: int, final: bool = False) -> ReplyChunk:
    return ReplyChunk(call_id="c", turn_id=turn, seq=seq, text=f"{turn}{seq}", final=final)


async def take(queue: TurnQueue, n: int, timeout: float = 0.5) -> list[str]:
    out = []
    for _ in range(n):
        turn, queued = await asyncio.wait_for(queue.next(), timeout)
        out.append(queued.chunk.text)
        if queued.chunk.final:
            queue.finish(turn)
    return out


async def test_chunks_of_a_turn_come_out_in_seq_order() -> None:
    queue = TurnQueue()
    for c in (chunk("a", 2, final=True), chunk("a", 0), chunk("a", 1)):
        assert queue.add(c, Context())
    assert await take(queue, 3) == ["a0", "a1", "a2"]


async def test_turns_come_out_in_arrival_order_and_wait_for_their_chunks() -> None:
    queue = TurnQueue()
    queue.add(chunk("b", 0), Context())
    queue.add(chunk("a", 0, final=True), Context())
    assert await take(queue, 1) == ["b0"]
    with pytest.raises(TimeoutError):  # "a" waits for "b" to finish
        await take(queue, 1, timeout=0.1)
    queue.add(chunk("b", 1, final=True), Context())
    assert await take(queue, 2) == ["b1", "a0"]


async def test_duplicates_and_chunks_of_finished_or_dropped_turns_are_refused() -> None:
    queue = TurnQueue()
    queue.add(chunk("a", 0, final=True), Context())
    assert not queue.add(chunk("a", 0, final=True), Context())
    await take(queue, 1)
    assert not queue.add(chunk("a", 1), Context())
    queue.drop("x")  # an interrupt may come before the turn's first chunk
    assert not queue.add(chunk("x", 0), Context())
    queue.stop()
    assert not queue.add(chunk("y", 0), Context())


async def test_a_missing_chunk_is_skipped_after_the_gap_wait() -> None:
    queue = TurnQueue(gap_wait_s=0.1)
    queue.add(chunk("a", 0), Context())
    queue.add(chunk("a", 2, final=True), Context())
    assert await take(queue, 2) == ["a0", "a2"]


async def test_a_stalled_turn_is_abandoned_only_when_a_newer_turn_waits() -> None:
    clock = Clock()
    queue = TurnQueue(stall_s=5.0, clock=clock)
    queue.add(chunk("a", 0), Context())
    assert await take(queue, 1) == ["a0"]
    clock.t += 60  # a long silence alone is fine: the brain may still be thinking
    with pytest.raises(TimeoutError):
        await take(queue, 1, timeout=0.1)
    assert queue.get("a") is not None
    queue.add(chunk("b", 0, final=True), Context())
    clock.t += 6
    assert await take(queue, 1) == ["b0"]
    assert queue.get("a") is None
