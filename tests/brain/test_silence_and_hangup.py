"""Silence, goodbyes and hang-ups, as the caller notices them (short timeouts)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from ringline.contracts.events import CALL_HANGUP

pytestmark = pytest.mark.service

FAST = {"silence_reprompt_s": 0.25, "silence_goodbye_s": 0.25}


def hangups(h):
    return [c for c in h.controls if c.action == "hangup"]


async def test_silence_gets_one_reprompt_then_a_goodbye_and_the_agent_hangs_up(make_harness, scripted, until):
    async with make_harness(scripted(["Paris."]), **FAST) as h:
        await h.start_call()
        await h.greeted()
        started = time.monotonic()
        await until(lambda: h.answers("reprompt"), timeout=2)
        assert time.monotonic() - started >= 0.2
        (reprompt,) = h.answers("reprompt")
        assert reprompt.text == "Are you still there?" and reprompt.final
        assert hangups(h) == []

        await until(lambda: hangups(h), timeout=2)
        assert [r.kind for r in h.replies] == ["greeting", "reprompt", "goodbye"]
        assert "Goodbye" in h.answers("goodbye")[0].text
        (event,) = h.named(CALL_HANGUP)
        assert event.data["reason"] == "the caller was silent" and event.data["goodbye"] == "heard"
        await asyncio.sleep(0.4)
        assert len(h.replies) == 3 and len(hangups(h)) == 1, "nothing more after hanging up"


async def test_the_caller_speaking_resets_the_silence(make_harness, scripted, until):
    async with make_harness(scripted(["Paris is the capital."]), **FAST) as h:
        call_id = await h.start_call()
        await h.greeted()
        for _ in range(3):  # keeps talking (and coughing) in time: no re-prompt
            await asyncio.sleep(0.15)
            await h.speech(call_id, "started", utterance_id=f"c{_}")
            await asyncio.sleep(0.05)
            await h.speech(call_id, "stopped", utterance_id=f"c{_}")
        assert h.answers("reprompt") == []
        await h.say(call_id, "What is the capital of France?")
        await until(lambda: any(c.final for c in h.answers("answer")))
        await h.played()
        await asyncio.sleep(0.15)
        assert h.answers("reprompt") == []
        await until(lambda: h.answers("reprompt"), timeout=2)  # silence after the answer counts again


async def test_a_reprompt_answered_starts_the_count_again(make_harness, scripted, until):
    async with make_harness(scripted(["Great."]), **FAST) as h:
        call_id = await h.start_call()
        await h.greeted()
        await until(lambda: h.answers("reprompt"), timeout=2)
        await h.say(call_id, "Yes, sorry, I'm here.")
        await until(lambda: h.answers("answer"))
        await until(lambda: len(h.answers("reprompt")) == 2, timeout=2)  # re-prompted, not hung up
        assert hangups(h) == []


async def test_caller_goodbye_gets_a_goodbye_and_the_hangup_waits_for_its_mark(make_harness, scripted, until):
    async with make_harness(scripted(["Should not be asked."]), play_s=None) as h:
        call_id = await h.start_call()
        greeting = await h.greeted()
        await h.heard(greeting)
        await h.say(call_id, "Thanks, that's all. Bye!", utterance_id="u1")
        await until(lambda: h.answers("goodbye"))
        (goodbye,) = h.answers("goodbye")
        assert goodbye.final and goodbye.in_reply_to == "u1" and "Goodbye" in goodbye.text
        assert h.model.calls == [], "a canned goodbye, no LLM round trip"

        await asyncio.sleep(0.5)
        assert hangups(h) == [], "the goodbye has not been heard yet"
        await h.say(call_id, "Bye bye.", utterance_id="u2")  # talking over the goodbye does not stop it
        assert not any(c.action == "interrupt" for c in h.controls)

        await h.heard(goodbye)
        await until(lambda: hangups(h))
        assert hangups(h)[0].reason == "the caller said goodbye"
        assert h.named(CALL_HANGUP)[0].data["goodbye"] == "heard"


async def test_a_goodbye_nobody_echoes_still_hangs_up_after_its_length(make_harness, scripted, until):
    async with make_harness(scripted([]), play_s=None, playback_slack_s=0.3) as h:
        call_id = await h.start_call()
        await h.heard(await h.greeted())
        await h.say(call_id, "Okay, goodbye.")
        await until(lambda: h.answers("goodbye"))
        said = time.monotonic()
        await until(lambda: hangups(h), timeout=6)
        waited = time.monotonic() - said
        text = h.answers("goodbye")[0].text
        assert len(text) / 14.0 <= waited <= len(text) / 14.0 + 2.0
        assert h.named(CALL_HANGUP)[0].data["goodbye"] == "timeout"


async def test_a_question_about_goodbye_is_answered_not_hung_up(make_harness, scripted, until):
    async with make_harness(scripted(["Au revoir."])) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "How do you say goodbye in French?")
        await until(lambda: any(c.final for c in h.answers()))
        assert [c.kind for c in h.answers()] == ["answer"]
        await asyncio.sleep(0.3)
        assert hangups(h) == []


async def test_the_models_own_goodbye_ends_the_call(make_harness, scripted, until):
    async with make_harness(scripted(["You're welcome.", " Goodbye!"])) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Great, you've been very helpful.")
        await until(lambda: hangups(h), timeout=3)
        chunks = h.answers()
        assert chunks[-1].final and chunks[-1].kind == "goodbye"
        assert h.said() == "You're welcome. Goodbye!"
        assert hangups(h)[0].reason == "the agent said goodbye"


async def test_a_caller_hanging_up_mid_reply_stops_everything_quietly(make_harness, scripted, until, caplog):
    caplog.set_level(logging.WARNING)
    async with make_harness(scripted([" Word."] * 200, delay=0.02), **FAST) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Talk to me.")
        await until(lambda: h.answers())
        await h.control(call_id, "ended")
        count = len(h.answers())
        await asyncio.sleep(0.6)  # longer than both silences
        assert len(h.answers()) == count and h.answers("reprompt") == []
        assert h.model.stopped == 1 and hangups(h) == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
