"""Memory across calls, as the caller notices it: a remembered caller is greeted by name and asked
about what was open; the agent knows what it remembers; after the call its summary and facts go
to the call record and the caller's memory; a caller who asks to be forgotten is forgotten.

The memory service is faked by responders on the in-memory broker (`memory.recall.*`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from ringline.contracts import subjects
from ringline.contracts.events import CALL_SUMMARY
from ringline.contracts.messages import CallEnd
from ringline.contracts.messages.recall import (
    CallerMemory,
    Fact,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
    RecallPutReply,
    RecallPutRequest,
    merge_call,
)
from ringline.services.brain.llm.base import Capabilities, ChatModel, Messages, StreamStats, ToolCall, ToolSpec
from ringline.services.brain.summary import NOTES_SYSTEM

pytestmark = pytest.mark.service

SAM = "+15550100001"
STRANGER = "+15550100077"
SAM_MEMORY = CallerMemory(agent_id="reception", caller=SAM, summary="Sam booked a table for Tuesday.",
                          facts=[Fact(kind="name", text="Sam"), Fact(kind="open", text="book a table for Tuesday")],
                          calls=1, updated_at=time.time() - 86400)


class FakeMemory:
    """`memory.recall.*` answered from a dict keyed by (agent, caller), like the memory service."""

    def __init__(self, delay: float = 0.0) -> None:
        self.memories: dict[tuple[str, str], CallerMemory] = {}
        self.asked: list[RecallGetRequest] = []
        self.puts: list[RecallPutRequest] = []
        self.forgets: list[RecallForgetRequest] = []
        self.delay = delay

    async def attach(self, broker: Any) -> FakeMemory:
        for subject, handler in ((subjects.MEMORY_RECALL_GET, self.get), (subjects.MEMORY_RECALL_PUT, self.put),
                                 (subjects.MEMORY_RECALL_FORGET, self.forget)):
            subscriber = broker.subscriber(subject, persistent=False)
            subscriber(handler)
            await subscriber.start()
        return self

    async def get(self, request: RecallGetRequest) -> RecallGetReply:
        self.asked.append(request)
        await asyncio.sleep(self.delay)
        memory = self.memories.get((request.agent_id, request.caller))
        return RecallGetReply(found=memory is not None, memory=memory)

    async def put(self, request: RecallPutRequest) -> RecallPutReply:
        self.puts.append(request)
        key = (request.notes.agent_id, request.notes.caller)
        self.memories[key] = merge_call(self.memories.get(key), request.notes)
        return RecallPutReply(ok=True, memory=self.memories[key])

    async def forget(self, request: RecallForgetRequest) -> RecallForgetReply:
        self.forgets.append(request)
        return RecallForgetReply(forgotten=self.memories.pop((request.agent_id, request.caller), None) is not None)


class NoteTaker(ChatModel):
    """Answers the caller with `reply`, and the after-call notes prompt with `notes`."""

    provider = "fake"
    model = "note-taker"

    def __init__(self, reply: str = "Sure, I can help with that.", notes: str = "", notes_delay: float = 0.0) -> None:
        self.reply = reply
        self.notes = notes
        self.notes_delay = notes_delay
        self.turns: list[Messages] = []
        self.note_requests: list[Messages] = []

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncIterator[str]:
        if messages[0]["content"] == NOTES_SYSTEM:
            self.note_requests.append(messages)
            await asyncio.sleep(self.notes_delay)
            yield self.notes
            return
        self.turns.append(messages)
        yield self.reply


async def end(h, call_id: str) -> None:
    await h.broker.publish(CallEnd(call_id=call_id), subjects.CALLS_END)


async def summary_of(h, until, call_id: str, timeout: float = 5.0):
    await until(lambda: any(e.call_id == call_id for e in h.named(CALL_SUMMARY)), timeout)
    return next(e for e in h.named(CALL_SUMMARY) if e.call_id == call_id)


async def test_a_remembered_caller_is_greeted_by_name_and_asked_about_what_was_open(make_harness, until) -> None:
    model = NoteTaker()
    async with make_harness(model) as h:
        memory = await FakeMemory().attach(h.broker)
        memory.memories[("reception", SAM)] = SAM_MEMORY
        call_id = await h.start_call(agent_id="reception", caller="+1 (555) 010-0001")
        greeting = await h.greeted()
        assert greeting.text == ("Hi Sam, welcome back! This is Ringline, an AI assistant. "
                                 "Did the table for Tuesday work out?")
        assert [(r.agent_id, r.caller) for r in memory.asked] == [("reception", SAM)]
        await h.say(call_id, "Yes, it was lovely, thanks.")
        await until(lambda: model.turns)
        system = model.turns[0][0]["content"]
        assert "What you remember about this caller (1 earlier call" in system
        assert "Their name is Sam." in system and "Last call: Sam booked a table for Tuesday." in system
        await end(h, call_id)
        await summary_of(h, until, call_id)
        await until(lambda: memory.puts)
        # The follow-up was asked: that open item is done with.
        assert memory.puts[0].notes.followed_up == ["book a table for Tuesday"]
        assert memory.memories[("reception", SAM)].of("open") == []
        assert memory.memories[("reception", SAM)].calls == 2


async def test_memory_is_asked_per_agent_and_a_stranger_gets_the_usual_greeting(make_harness, until) -> None:
    async with make_harness(NoteTaker()) as h:
        memory = await FakeMemory().attach(h.broker)
        memory.memories[("reception", SAM)] = SAM_MEMORY
        await h.start_call("call-1", agent_id="reception", caller=STRANGER)
        await h.start_call("call-2", agent_id="sales", caller=SAM)
        await until(lambda: len([r for r in h.replies if r.kind == "greeting"]) == 2)
        assert {r.call_id: r.text for r in h.replies if r.kind == "greeting"} == {
            "call-1": h.settings.greeting, "call-2": h.settings.greeting}
        assert sorted((r.agent_id, r.caller) for r in memory.asked) == [("reception", STRANGER), ("sales", SAM)]


async def test_without_a_memory_service_the_greeting_is_not_delayed(make_harness, until) -> None:
    async with make_harness(NoteTaker()) as h:  # nobody answers memory.recall.get
        started = time.monotonic()
        await h.start_call(caller=SAM)
        greeting = await h.greeted()
        assert greeting.text == h.settings.greeting
        assert time.monotonic() - started < 0.5


async def test_a_slow_memory_service_costs_at_most_the_recall_timeout(make_harness, until) -> None:
    async with make_harness(NoteTaker(), recall_timeout_s=0.3) as h:
        memory = await FakeMemory(delay=3.0).attach(h.broker)
        memory.memories[("default", SAM)] = SAM_MEMORY.model_copy(update={"agent_id": "default"})
        started = time.monotonic()
        await h.start_call(caller=SAM)
        greeting = await h.greeted()
        assert greeting.text == h.settings.greeting  # too late to be used
        assert time.monotonic() - started < 0.8


async def test_anonymous_callers_are_neither_looked_up_nor_remembered(make_harness, until) -> None:
    async with make_harness(NoteTaker()) as h:
        memory = await FakeMemory().attach(h.broker)
        call_id = await h.start_call(caller="anonymous")
        await h.greeted()
        await h.say(call_id, "Hi, my name is Sam.")
        await until(lambda: h.answers())
        await end(h, call_id)
        event = await summary_of(h, until, call_id)
        assert event.data["facts"] == [{"kind": "name", "text": "Sam"}]  # in the call record, not in memory
        await asyncio.sleep(0.1)
        assert memory.asked == [] and memory.puts == []


async def test_after_the_call_the_rules_make_the_notes_when_the_model_writes_nothing_usable(
        make_harness, until) -> None:
    model = NoteTaker(notes="I am a language model and I cannot take notes.")
    async with make_harness(model, call_summary="llm") as h:
        memory = await FakeMemory().attach(h.broker)
        call_id = await h.start_call(agent_id="reception", caller=SAM)
        await h.greeted()
        await h.say(call_id, "Hi, my name is Sam. I'd like to book a table for Tuesday.")
        await until(lambda: h.answers())
        await h.played()
        await end(h, call_id)
        event = await summary_of(h, until, call_id)
        assert event.data["summary"] == "Sam called and wanted to book a table for Tuesday."
        assert event.data["facts"] == [{"kind": "name", "text": "Sam"},
                                       {"kind": "open", "text": "book a table for Tuesday"}]
        assert event.data["by"] == "rules" and model.note_requests
        await until(lambda: memory.puts)
        remembered = memory.memories[("reception", SAM)]
        assert remembered.name == "Sam" and remembered.calls == 1


async def test_the_models_notes_are_kept_where_the_caller_said_so(make_harness, until) -> None:
    notes = ("Summary: Maria asked about her order 4471, which has not arrived.\nName: Maria\n"
             "Open: order 4471\nLikes: calls in the morning")
    model = NoteTaker(reply="I'm sorry, let me check on that.", notes=notes)
    async with make_harness(model, call_summary="llm") as h:
        memory = await FakeMemory().attach(h.broker)
        call_id = await h.start_call(agent_id="reception", caller=SAM)
        await h.greeted()
        await h.say(call_id, "Hello, it's about my order 4471, it hasn't arrived. Please call me in the morning.")
        await until(lambda: h.answers())
        await h.played()
        await end(h, call_id)
        event = await summary_of(h, until, call_id)
        assert event.data["summary"] == "Maria asked about her order 4471, which has not arrived."
        # "Maria" never said her name: the model's guess is not kept.
        assert event.data["facts"] == [{"kind": "open", "text": "order 4471"},
                                       {"kind": "preference", "text": "calls in the morning"}]
        assert event.data["by"] == "llm" and event.turn_id  # charged to the call's last agent turn
        # The notes prompt ends with a short request, so a chain's routing rule picks its fast model.
        assert model.note_requests[0][-1] == {"role": "user", "content": "Notes on this call, four lines."}
        await until(lambda: memory.puts)


async def test_a_slow_model_gives_way_to_the_rules_after_the_summary_timeout(make_harness, until) -> None:
    model = NoteTaker(notes="Summary: Sam booked.\nName: Sam", notes_delay=10.0)
    async with make_harness(model, summary_timeout_s=0.3) as h:
        call_id = await h.start_call(caller=SAM)
        await h.greeted()
        await h.say(call_id, "This is Sam, can I book a table?")
        await until(lambda: h.answers())
        await end(h, call_id)
        event = await summary_of(h, until, call_id, timeout=3.0)
        assert event.data["summary"] == "Sam asked: This is Sam, can I book a table?" and event.data["by"] == "rules"


async def test_forget_me_deletes_the_memory_and_keeps_nothing_of_the_call(make_harness, until) -> None:
    model = NoteTaker()
    async with make_harness(model) as h:
        memory = await FakeMemory().attach(h.broker)
        memory.memories[("reception", SAM)] = SAM_MEMORY
        call_id = await h.start_call(agent_id="reception", caller=SAM)
        await h.greeted()
        await h.say(call_id, "Please forget everything you know about me.", utterance_id="u1")
        await until(lambda: h.answers())
        assert h.said() == h.settings.forget_line
        assert [(r.agent_id, r.caller) for r in memory.forgets] == [("reception", SAM)]
        assert ("reception", SAM) not in memory.memories
        await h.played()
        await h.say(call_id, "My name is Sam and I'd like a table on Friday.", utterance_id="u2")
        await until(lambda: model.turns)
        assert "What you remember" not in model.turns[0][0]["content"]  # gone from the prompt too
        await end(h, call_id)
        event = await summary_of(h, until, call_id)
        assert event.data["facts"] == [] and "forgotten" in event.data["summary"]
        await asyncio.sleep(0.1)
        assert memory.puts == [] and ("reception", SAM) not in memory.memories


async def test_when_memory_cannot_forget_the_caller_hears_so(make_harness, until) -> None:
    async with make_harness(NoteTaker()) as h:  # no memory service
        call_id = await h.start_call(caller=SAM)
        await h.greeted()
        await h.say(call_id, "Forget me.")
        await until(lambda: h.answers(), timeout=4)
        assert h.said() == h.settings.forget_failed_line


class Forgetful(ChatModel):
    """A tool-using model: asked to forget, it calls `forget_me`, then confirms with the result."""

    provider = "fake-tools"
    model = "forgetful"
    capabilities = Capabilities(streaming=True, tools=True)

    def __init__(self) -> None:
        self.requests: list[tuple[Messages, tuple[ToolSpec, ...]]] = []

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats,
                           tools: tuple[ToolSpec, ...] = ()) -> AsyncIterator[str | ToolCall]:
        self.requests.append((messages, tools))
        if messages[-1]["role"] == "tool":
            yield "Done, I've forgotten you." if '"forgotten": true' in messages[-1]["content"] else "I couldn't."
            return
        yield ToolCall(id="call_1", name="forget_me", arguments={})


async def test_a_tool_using_model_forgets_through_the_forget_me_tool(make_harness, until) -> None:
    model = Forgetful()
    async with make_harness(model) as h:
        memory = await FakeMemory().attach(h.broker)
        memory.memories[("default", SAM)] = SAM_MEMORY.model_copy(update={"agent_id": "default"})
        call_id = await h.start_call(caller=SAM)
        await h.greeted()
        await h.say(call_id, "I'd rather you didn't keep notes on me anymore.")  # not caught by the phrase rule
        await until(lambda: any(c.final for c in h.answers()), timeout=3)
        assert h.said() == "Done, I've forgotten you."
        assert "forget_me" in [t.name for t in model.requests[0][1]]
        assert memory.forgets and ("default", SAM) not in memory.memories
        await end(h, call_id)
        event = await summary_of(h, until, call_id)
        assert event.data["facts"] == []
        await asyncio.sleep(0.1)
        assert memory.puts == []


async def test_a_voicemail_call_gets_no_summary_and_is_not_remembered(make_harness, until, tmp_path) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text('agents:\n  - id: reception\n    allow: ["+44*"]\n    voicemail: {silence_s: 0.3}\n')
    async with make_harness(NoteTaker(), RINGLINE_AGENTS_FILE=str(agents)) as h:
        memory = await FakeMemory().attach(h.broker)
        call_id = await h.start_call(agent_id="reception", caller=SAM)
        await until(lambda: h.replies)
        assert h.replies[0].text.startswith("Sorry, I can't take your call right now.")
        await h.say(call_id, "Hi, my name is Sam, please call me back.")
        await asyncio.sleep(0.2)
        await end(h, call_id)
        await asyncio.sleep(0.3)
        assert h.named(CALL_SUMMARY) == [] and memory.puts == []


async def test_an_outbound_call_remembers_the_person_called_and_opens_with_its_purpose(make_harness, until) -> None:
    model = NoteTaker()
    async with make_harness(model) as h:
        memory = await FakeMemory().attach(h.broker)
        memory.memories[("reception", SAM)] = SAM_MEMORY
        call_id = await h.start_call(agent_id="reception", direction="outbound", caller="+15550100011", callee=SAM,
                                     custom={"purpose": "confirm the table on Tuesday", "answered_by": "human"})
        greeting = await h.greeted()
        assert "calling to confirm the table on Tuesday" in greeting.text and "welcome back" not in greeting.text
        assert [(r.agent_id, r.caller) for r in memory.asked] == [("reception", SAM)]
        await h.say(call_id, "Yes, that's right.")
        await until(lambda: model.turns)
        assert "Their name is Sam." in model.turns[0][0]["content"]
        await end(h, call_id)
        await until(lambda: memory.puts)
        assert memory.puts[0].notes.followed_up == []  # the opening asked nothing about it
        assert memory.memories[("reception", SAM)].of("open") == ["book a table for Tuesday"]


async def test_on_shutdown_after_call_jobs_stop_waiting_for_the_model_and_publish_the_rules_notes() -> None:
    from ringline.services.brain.aftercall import AfterCalls, FinishedCall
    from ringline.services.brain.summary import call_text

    class Bus:
        def __init__(self) -> None:
            self.published: list[Any] = []

        async def publish(self, message: Any, subject: str) -> None:
            self.published.append(message)

        async def request(self, *args: Any, **kwargs: Any) -> Any:
            raise TimeoutError("no memory service")

    bus = Bus()
    jobs = AfterCalls(bus)
    said = "Hi, my name is Sam. I'd like to book a table for Tuesday."
    text = call_text([("user", said)], "", "Sam", ["book a table for Tuesday"], [said])
    jobs.add(FinishedCall(call_id="c1", agent_id="reception", number=SAM, text=text,
                          model=NoteTaker(notes="Summary: late.", notes_delay=30.0), timeout_s=30.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await jobs.drain(timeout=5.0)
    assert time.monotonic() - started < 1.0
    (event,) = bus.published
    assert event.name == CALL_SUMMARY and event.data["by"] == "rules"
    assert event.data["summary"] == "Sam called and wanted to book a table for Tuesday."
