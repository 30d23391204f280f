"""Kill the replica serving a stage of a live call and measure what the caller notices.

`chaos_call` places one scripted call on a stack that runs two replicas of each stage. When the
agent starts its k-th answer it waits `kill_after_s` (the reply is playing), asks the stage's
lease table which replica owns the call, and kills that process (SIGKILL, or SIGTERM to drain).
The killed replica is started again in the background so the next round has two again.

Per kill it reports the gap: from the kill to the next agent audio the edge sends the caller.
Used by the end-to-end failover test (one kill per stage) and `tests/bench/failover_bench.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from .caller import Scenario, place_call
from .caller.results import CallResult
from .contracts import subjects
from .contracts.events import STAGE_TAKEOVER, TURN_FIRST_AUDIO
from .contracts.messages import CallEvent
from .contracts.runtime import ServiceSettings, create_broker
from .contracts.runtime.leases import LeaseTable
from .stack import Stack


@dataclass
class Kill:
    stage: str
    replica: str = ""
    at: float = 0.0  # monotonic
    next_audio_at: float | None = None
    taken_over_at: float | None = None  # another replica of the stage announced the takeover
    next_answer_ms: float | None = None  # mouth-to-ear of the first answer after the kill
    error: str = ""

    @property
    def takeover_s(self) -> float | None:
        return None if self.taken_over_at is None else self.taken_over_at - self.at

    @property
    def gap_s(self) -> float | None:
        return None if self.next_audio_at is None else self.next_audio_at - self.at


@dataclass
class ChaosResult:
    result: CallResult
    kills: list[Kill] = field(default_factory=list)


async def _owner(broker: Any, stage: str, call_id: str) -> str:
    table = await LeaseTable.open(broker, stage, ServiceSettings().lease_ttl_s)
    lease = await table.holder(call_id)
    return lease.owner if lease is not None else ""


async def _respawn_later(stack: Stack, key: str) -> None:
    """Start the killed replica again once it is gone (in this thread: a process started from a
    helper thread would die with that thread)."""
    deadline = time.monotonic() + 30
    while stack.process(key).poll() is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    with contextlib.suppress(Exception):  # the next round runs with one replica of that stage
        stack.spawn_again(key)


async def chaos_call(stack: Stack, scenario: Scenario, stages: list[str], *, kill_after_s: float = 0.8,
                     sig: int = signal.SIGKILL, reply_timeout: float = 60.0) -> ChaosResult:
    """One call; at the start of answer k (k = 1..len(stages)) the owner of `stages[k-1]` dies."""
    broker = create_broker(ServiceSettings(nats_url=stack.url), "chaos")
    answers: list[tuple[float, str]] = []
    audio: list[float] = []
    takeovers: list[tuple[float, str]] = []

    @broker.subscriber(subjects.EVENT_WILDCARD)
    async def on_event(event: CallEvent) -> None:
        if event.name == STAGE_TAKEOVER:
            takeovers.append((time.monotonic(), str(event.data.get("stage", ""))))
        if event.name == TURN_FIRST_AUDIO:
            audio.append(time.monotonic())
            if "greet" not in event.turn_id:
                answers.append((time.monotonic(), event.call_id))

    kills = [Kill(stage) for stage in stages]
    respawns: list[asyncio.Task[None]] = []
    await broker.start()
    try:
        task = asyncio.create_task(place_call(stack.edge_url, scenario, nats_url=stack.url,
                                              reply_timeout=reply_timeout, record_timeout=20.0, max_reply_s=60.0))
        for k, kill in enumerate(kills):
            while len(answers) <= k and not task.done():
                await asyncio.sleep(0.02)
            if task.done():
                kill.error = "the call ended before this kill"
                continue
            await asyncio.sleep(kill_after_s)
            call_id = answers[k][1]
            owner = await _owner(broker, kill.stage, call_id)
            key = owner.split("@", 1)[0]
            if key not in stack.processes:
                kill.error = f"no process for the owner {owner!r}"
                continue
            kill.replica, kill.at = key, time.monotonic()
            stack.kill(key, sig)
            respawns.append(asyncio.create_task(_respawn_later(stack, key)))
        result = await task
        await asyncio.gather(*respawns)
    finally:
        await broker.stop()
    replies = result.replies
    for k, kill in enumerate(kills):
        if kill.at:
            kill.next_audio_at = next((t for t in audio if t > kill.at), None)
            kill.taken_over_at = next((t for t, stage in takeovers if t > kill.at and stage == kill.stage), None)
        if k + 1 < len(replies):  # the kill came during answer k+1; the next answer is the one to feel it
            kill.next_answer_ms = replies[k + 1].mouth_to_ear_ms
    return ChaosResult(result, kills)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
