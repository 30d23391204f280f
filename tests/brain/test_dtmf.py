"""Key presses reach the conversation: the agent answers them, or says a canned line."""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.service


async def test_a_key_press_is_a_caller_turn_the_model_answers(make_harness, scripted, until):
    async with make_harness(scripted(["You pressed one: billing."])) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.dtmf(call_id, "1")
        await until(lambda: any(c.final for c in h.answers()))
        assert h.said() == "You pressed one: billing."
        assert h.model.calls[0][-1] == {"role": "user", "content": "[caller pressed 1]"}
        await until(lambda: h.llm_events())
        assert h.llm_events()[0].data["dtmf"] == "1"


async def test_a_digit_with_a_canned_reply_skips_the_model(make_harness, scripted, until):
    replies = {"0": "Transferring isn't available yet."}
    async with make_harness(scripted(["unused"]), dtmf_replies=replies) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.dtmf(call_id, "0")
        await until(lambda: h.answers())
        assert [(c.text, c.final) for c in h.answers()] == [("Transferring isn't available yet.", True)]
        assert h.model.calls == []
        h.model.pieces = ["Sure."]
        await h.played()
        await h.say(call_id, "Okay, what else can you do?")
        await until(lambda: h.model.calls)
        assert [m["content"] for m in h.model.calls[0][-3:]] == [
            "[caller pressed 0]", "Transferring isn't available yet.", "Okay, what else can you do?"]


async def test_a_key_press_while_the_agent_speaks_interrupts_it(make_harness, scripted, until):
    async with make_harness(scripted([" Word."] * 100, delay=0.05), play_s=None) as h:
        call_id = await h.start_call()
        await h.heard(await h.greeted())
        await h.say(call_id, "Talk to me.")
        await until(lambda: h.answers())
        turn_id = h.answers()[0].turn_id
        await h.playing_since(h.answers()[0], 0.5)
        await h.dtmf(call_id, "5")
        assert [(c.action, c.turn_id) for c in h.controls if c.action == "interrupt"] == [("interrupt", turn_id)]
        await until(lambda: len(h.model.calls) == 2)
        assert h.model.calls[1][-1] == {"role": "user", "content": "[caller pressed 5]"}


async def test_bad_digits_are_ignored(make_harness, scripted, until):
    async with make_harness(scripted(["Hm."])) as h:
        call_id = await h.start_call()
        await h.greeted()
        for digit in ["", "12", "x", "ü"]:
            await h.dtmf(call_id, digit)
        await asyncio.sleep(0.2)
        assert h.answers() == [] and h.model.calls == []
