"""The session's clocks: a named timer's firing is an event for the decisions."""

from __future__ import annotations

import asyncio

import pytest

from ringline.services.brain.events import TimerFired
from ringline.services.brain.timers import Timers

pytestmark = pytest.mark.unit


async def test_rearming_replaces_disarming_stops_and_closing_stops_all():
    fired: list[object] = []
    timers: Timers

    async def dispatch(event: object) -> None:
        fired.append(event)
        timers.disarm("silence")  # what a firing decides may disarm its own timer: it still ran

    timers = Timers(lambda coro, name: asyncio.create_task(coro, name=name), dispatch)
    timers.arm("silence", 0.05)
    timers.arm("silence", 0.02)  # replaces the first: it fires once
    timers.arm("resume-agent", 0.02)
    timers.disarm("resume-agent")
    await asyncio.sleep(0.1)
    assert fired == [TimerFired("silence")] and not timers.armed("silence")
    timers.arm("hangup", 0.02)
    timers.close()
    timers.arm("hangup", 0.01)  # nothing after the call is over
    await asyncio.sleep(0.05)
    assert fired == [TimerFired("silence")]
