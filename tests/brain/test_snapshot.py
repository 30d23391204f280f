"""A replica taking a call over from a snapshot carries the conversation on: no second
greeting, the history as it was, a reply that died with the old replica made again, a message
being left still taken."""

from __future__ import annotations

import json

import pytest

from ringline.contracts.agent_options import Voicemail
from ringline.contracts.agents import Agent
from ringline.contracts.messages import CallStart
from ringline.contracts.runtime import CallBus
from ringline.services.brain.session import BrainSession
from ringline.services.brain.state import TurnState

pytestmark = pytest.mark.service


def said(messages: list[dict[str, object]]) -> list[object]:
    return [m["content"] for m in messages if m["role"] != "system"]


async def replica(h, call: CallStart, snapshot: dict[str, object] | None = None) -> BrainSession:
    session = BrainSession(call, CallBus(h.broker, call.call_id), h.settings, h.model)
    if snapshot is not None:
        session.restore(json.loads(json.dumps(snapshot)))  # as it comes back from the store
    await session.start()
    return session


async def leave(session: BrainSession, detach: bool = False) -> None:
    if detach:
        await session.detach()
    else:
        await session.close("test over")
    await session.bus.close()


async def test_a_taken_over_call_is_not_greeted_again_and_keeps_its_history(make_harness, scripted, until):
    async with make_harness(scripted(["It is nine."])) as h:
        call = CallStart(call_id="call-t1")
        first = await replica(h, call)
        await h.tts_ready(call.call_id)
        greeting = (await h.greeted()).text
        await h.say(call.call_id, "What time is it?")
        await until(lambda: any(r.final and r.kind == "answer" for r in h.replies))
        await h.played()
        await until(lambda: first.state.phase == "listening")
        snapshot = first.snapshot()
        await leave(first, detach=True)
        assert snapshot["state"]["greeted"] and snapshot["state"]["phase"] == "listening"
        assert [t["text"] for t in snapshot["history"]["turns"]] == [greeting, "What time is it?", "It is nine."]

        before = len(h.replies)
        second = await replica(h, call, snapshot)
        await h.say(call.call_id, "And tomorrow?", utterance_id="u2")
        await until(lambda: len(h.model.calls) == 2 and any(r.final for r in h.replies[before:]))
        assert [r.kind for r in h.replies[before:]] == ["answer"]  # no second greeting
        assert said(h.model.calls[-1]) == [greeting, "What time is it?", "It is nine.", "And tomorrow?"]
        await leave(second)


async def test_a_reply_cut_by_the_takeover_is_made_again_from_the_history(make_harness, scripted, until):
    async with make_harness(scripted(["It is nine.", " And sunny.", " Warm too."], delay=0.4)) as h:
        call = CallStart(call_id="call-t2")
        first = await replica(h, call)
        await h.tts_ready(call.call_id)
        await h.greeted()
        await h.say(call.call_id, "What time is it?")
        await until(lambda: any(r.kind == "answer" for r in h.replies))
        await h.played()
        snapshot = first.snapshot()
        await leave(first, detach=True)
        (cut,) = [t for t in snapshot["state"]["turns"] if t["final_seq"] is None]
        assert cut["chunks"] == [[0, "It is nine."]] and cut["heard_seq"] == 0
        assert snapshot["state"]["agent"]["generating"] and not snapshot["state"]["agent"]["finished"]

        second = await replica(h, call, snapshot)
        await until(lambda: any(c.action == "interrupt" and c.turn_id == cut["turn_id"] for c in h.controls))
        await until(lambda: any(r.final and r.turn_id != cut["turn_id"] for r in h.answers()), timeout=5.0)
        again = [r for r in h.answers() if r.turn_id != cut["turn_id"]]
        assert " ".join(r.text for r in again if r.text) == "It is nine. And sunny. Warm too."
        assert said(h.model.calls[-1])[-1] == "What time is it?"
        await leave(second)


async def test_a_call_taken_over_while_the_caller_leaves_a_message_still_takes_it(make_harness, scripted, until):
    async with make_harness(scripted(["Unused."])) as h:
        call = CallStart(call_id="call-t3")
        agent = Agent(id="default", voicemail=Voicemail(silence_s=0.3, goodbye="Got it. Bye!"))
        snapshot = {"version": 1, "state": TurnState(stage="talking", greeted=True, voicemail="busy").to_dict()}
        session = BrainSession(call, CallBus(h.broker, call.call_id), h.settings, h.model, agent=agent)
        session.restore(snapshot)
        await session.start()
        await h.say(call.call_id, "Please call me back about the order.")
        await until(lambda: h.named("voicemail.message") and h.said("goodbye"))
        assert h.named("voicemail.message")[0].data["text"] == "Please call me back about the order."
        assert h.said("goodbye") == "Got it. Bye!" and not [r for r in h.replies if r.kind == "greeting"]
        await leave(session)
