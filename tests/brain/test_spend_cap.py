"""The daily spend cap, as a caller hears it: over the cap, the voicemail prompt instead of the
greeting (the message itself is tested in test_voicemail).

The memory service is faked by a responder on the in-memory broker (`memory.spend.get`).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from ringline.contracts import subjects
from ringline.contracts.events import VOICEMAIL_STARTED
from ringline.contracts.messages import SpendReply, SpendRequest

pytestmark = pytest.mark.service


async def memory_answers(h, spent: float, delay: float = 0.0) -> list[SpendRequest]:
    """A fake memory service: answers every spend request with `spent` (after `delay`)."""
    asked: list[SpendRequest] = []

    async def answer(request: SpendRequest) -> SpendReply:
        asked.append(request)
        await asyncio.sleep(delay)
        return SpendReply(agent_id=request.agent_id, day="2025-06-01", spent=spent)

    subscriber = h.broker.subscriber(subjects.MEMORY_SPEND_GET, persistent=False)
    subscriber(answer)
    await subscriber.start()
    return asked


def hangups(h):
    return [c for c in h.controls if c.action == "hangup"]


async def test_over_the_cap_the_caller_reaches_voicemail_and_no_model_is_asked(make_harness, scripted, until):
    model = scripted(["Should never be asked."])
    async with make_harness(model, play_s=None, daily_spend_cap=5.0) as h:
        asked = await memory_answers(h, spent=5.0)
        await h.start_call(agent_id="sales")
        await until(lambda: h.replies)
        (prompt,) = h.replies
        assert prompt.text.startswith("Sorry, I can't take your call right now. Please leave a message")
        assert [r.agent_id for r in asked] == ["sales"] and [r.call_id for r in asked] == ["call-1"]
        await until(lambda: h.named(VOICEMAIL_STARTED))
        assert h.named(VOICEMAIL_STARTED)[0].data["reason"] == "over the daily spend cap"
        assert model.calls == []


async def test_under_the_cap_the_call_is_greeted_as_usual(make_harness, scripted, until):
    async with make_harness(scripted(["Paris."]), daily_spend_cap=5.0, ) as h:
        asked = await memory_answers(h, spent=4.99)
        call_id = await h.start_call()
        greeting = await h.greeted()
        assert greeting.text == h.settings.greeting and len(asked) == 1
        await h.say(call_id, "Capital of France?")
        await until(lambda: h.said("answer") == "Paris.")
        assert hangups(h) == []


async def test_without_a_cap_memory_is_not_asked(make_harness, scripted):
    async with make_harness(scripted(["Paris."])) as h:
        asked = await memory_answers(h, spent=1000.0)
        await h.start_call()
        await h.greeted()
        assert asked == [] and hangups(h) == []


async def test_when_memory_does_not_answer_the_call_goes_on_with_a_warning(make_harness, scripted, until, caplog):
    caplog.set_level(logging.WARNING, logger="ringline.brain.opening")
    async with make_harness(scripted(["Paris."]), daily_spend_cap=5.0, spend_check_timeout_s=0.2) as h:
        await memory_answers(h, spent=1000.0, delay=5.0)  # far too late
        await h.start_call()
        greeting = await h.greeted()
        assert greeting.kind == "greeting" and hangups(h) == []
    assert any("no answer from memory" in r.getMessage() for r in caplog.records)


async def test_with_no_memory_service_at_all_the_call_is_greeted(make_harness, scripted):
    async with make_harness(scripted(["Paris."]), daily_spend_cap=5.0) as h:
        await h.start_call()
        assert (await h.greeted()).kind == "greeting"
