"""Agents from the agents file, as the brain uses them: each agent's own greeting, and the calls
that go to voicemail (allow-list, business hours, busy), with the message as the caller left it.

The memory service is faked by a responder on the in-memory broker (`memory.spend.get`).
"""

from __future__ import annotations

import asyncio
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ringline.contracts import subjects
from ringline.contracts.events import (
    CALL_HANGUP,
    CALL_LIMIT,
    VOICEMAIL_MESSAGE,
    VOICEMAIL_STARTED,
)
from ringline.contracts.messages import SpendReply, SpendRequest

pytestmark = pytest.mark.service

AGENTS = """
agents:
  - id: family
    name: Robin
    numbers: ["+15550100001"]
    greeting: "Hi, this is Robin, the family's AI assistant."
    allow: ["+1555012*", "+447700900123"]
    voicemail: {prompt: "Robin can't talk. Leave a message.", silence_s: 0.5, goodbye: "Got it. Bye!"}
  - id: shop
    name: Sam
    numbers: ["+15550100002"]
    greeting: "Hello, you've reached the shop's AI assistant Sam."
    hours: {timezone: UTC, open: {"DAY": "09:00-10:00"}}
    voicemail: {prompt: "The shop is closed.", silence_s: 0.5}
  - id: busy
    numbers: ["+15550100003"]
    limits: {max_concurrent_calls: 2, max_call_s: 0.6}
    greeting: "Busy line here."
    voicemail: {prompt: "All lines are busy.", silence_s: 0.5, max_s: 5}
"""


def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    # The shop opens only on the day after tomorrow: closed now, whenever the test runs.
    day = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(datetime.now(UTC).weekday() + 2) % 7]
    path.write_text(textwrap.dedent(AGENTS).replace("DAY", day))
    return path


async def memory_answers(h, active: int) -> list[SpendRequest]:
    asked: list[SpendRequest] = []

    async def answer(request: SpendRequest) -> SpendReply:
        asked.append(request)
        return SpendReply(agent_id=request.agent_id, day="2026-11-21", spent=0.0, active_calls=active)

    subscriber = h.broker.subscriber(subjects.MEMORY_SPEND_GET, persistent=False)
    subscriber(answer)
    await subscriber.start()
    return asked


async def test_each_agent_greets_with_its_own_line(make_harness, scripted, tmp_path):
    async with make_harness(scripted(["Paris."]), agents_file=agents_file(tmp_path)) as h:
        await h.start_call("c-family", agent_id="family", caller="+15550123456")
        await h.start_call("c-unknown", agent_id="no-such-agent", caller="+15550123456")
        await asyncio.sleep(0.3)
        greetings = {r.call_id: r.text for r in h.replies if r.kind == "greeting"}
        assert greetings["c-family"] == "Hi, this is Robin, the family's AI assistant."
        # An unknown agent id gets the first agent (the book's default), never a crash.
        assert greetings["c-unknown"] == greetings["c-family"]
        assert h.named(VOICEMAIL_STARTED) == []


async def test_a_caller_off_the_allow_list_leaves_a_message(make_harness, scripted, until, tmp_path):
    model = scripted(["Never asked."])
    async with make_harness(model, agents_file=agents_file(tmp_path)) as h:
        call_id = await h.start_call(agent_id="family", caller="+15559990000")
        await until(lambda: h.replies)
        assert h.replies[0].text == "Robin can't talk. Leave a message."
        await until(lambda: h.named(VOICEMAIL_STARTED))
        assert h.named(VOICEMAIL_STARTED)[0].data == {"reason": "caller not on the allow-list"}

        await h.played()
        await h.speech(call_id, "started", 300, utterance_id="m1")
        await h.say(call_id, "Hi Robin, it's the plumber.", utterance_id="m1")
        await h.speech(call_id, "stopped", 900, utterance_id="m1")
        await h.speech(call_id, "started", 300, utterance_id="m2")
        await h.say(call_id, "I'll come on Tuesday at nine.", utterance_id="m2")
        await h.speech(call_id, "stopped", 900, utterance_id="m2")

        await until(lambda: h.named(VOICEMAIL_MESSAGE), timeout=3.0)
        (message,) = h.named(VOICEMAIL_MESSAGE)
        assert message.data["text"] == "Hi Robin, it's the plumber. I'll come on Tuesday at nine."
        assert message.data["reason"] == "caller not on the allow-list" and message.data["duration_s"] > 0
        await until(lambda: [c for c in h.controls if c.action == "hangup"])
        assert h.said("goodbye") == "Got it. Bye!"
        assert model.calls == [], "a voicemail never reaches the LLM"


async def test_a_caller_on_the_allow_list_is_answered(make_harness, scripted, tmp_path):
    async with make_harness(scripted(["Paris."]), agents_file=agents_file(tmp_path)) as h:
        await h.start_call(agent_id="family", caller="+44 7700 900123")
        assert (await h.greeted()).text.startswith("Hi, this is Robin")


async def test_outside_business_hours_and_when_busy_callers_reach_voicemail(make_harness, scripted, until, tmp_path):
    async with make_harness(scripted(["Paris."]), agents_file=agents_file(tmp_path)) as h:
        asked = await memory_answers(h, active=2)
        await h.start_call("c-shop", agent_id="shop", caller="+15550123456")
        await h.start_call("c-busy", agent_id="busy", caller="+15550123456")
        await until(lambda: len(h.named(VOICEMAIL_STARTED)) == 2)
        reasons = {e.call_id: e.data["reason"] for e in h.named(VOICEMAIL_STARTED)}
        assert reasons == {"c-shop": "outside business hours", "c-busy": "busy"}
        assert [r.agent_id for r in asked] == ["busy"], "only an agent with a limit asks memory"


async def test_a_caller_who_hangs_up_after_the_message_still_leaves_it(make_harness, scripted, until, tmp_path):
    async with make_harness(scripted(["Paris."]), agents_file=agents_file(tmp_path)) as h:
        await memory_answers(h, active=5)
        call_id = await h.start_call(agent_id="busy", caller="+15550123456")
        await until(lambda: h.named(VOICEMAIL_STARTED))
        await h.played()
        await h.speech(call_id, "started", 300, utterance_id="m1")
        await h.say(call_id, "Call me back about the invoice.", utterance_id="m1")
        await h.speech(call_id, "stopped", 900, utterance_id="m1")
        await h.control(call_id, "ended")
        await until(lambda: h.named(VOICEMAIL_MESSAGE))
        (message,) = h.named(VOICEMAIL_MESSAGE)
        assert message.data["text"] == "Call me back about the invoice."
        assert h.said("goodbye") == "", "nobody left to say goodbye to"


async def test_the_agent_ends_a_call_that_reaches_its_time_limit(make_harness, scripted, until, tmp_path):
    async with make_harness(scripted(["Paris."]), agents_file=agents_file(tmp_path)) as h:
        await memory_answers(h, active=0)
        await h.start_call(agent_id="busy", caller="+15550123456")
        await h.greeted()
        await until(lambda: h.named(CALL_HANGUP), timeout=3.0)
        assert h.named(CALL_LIMIT)[0].data == {"max_call_s": 0.6}
        assert h.said("goodbye") == "I'm sorry, we've reached the time limit for this call. Goodbye!"
