"""Barge-in and backchannels, as the caller notices them: the agent stops when talked over,
keeps going on an "uh-huh", and remembers only what the caller actually heard.

Marks are echoed by the tests themselves here (`play_s=None`), so "heard" is exactly what the
test says was heard.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.contracts.events import STT_EMPTY, TURN_BARGE_IN, TURN_PAUSED, TURN_RESUMED

pytestmark = pytest.mark.service

# The pause-then-decide mechanism on its own, with the thresholds it was first tuned with: pause at
# 250 ms of voiced speech, interrupt at 600 ms, and no resume on the shape of the speech.
TWO_STEP = {"barge_in_min_ms": 250, "barge_in_confirm_ms": 600, "backchannel_max_ms": 0}

SLOW = ["The capital of France is Paris.", " It sits on the Seine.", " It has many museums.",
        " The Louvre is the largest.", " Spring is lovely there."] + [" More words."] * 40


async def speaking_turn(h, until, call_id):
    """Ask a question and wait until the agent has spoken its first two chunks (marks not echoed);
    its audio has been playing for a second."""
    await h.say(call_id, "Tell me about Paris.", utterance_id="q1")
    await until(lambda: len(h.answers()) >= 2)
    await h.playing_since(h.answers()[0], 1.0)
    return h.answers()[0].turn_id


async def heard_greeting(h):
    greeting = await h.greeted()
    await h.heard(greeting)
    return greeting


async def test_the_agent_pauses_at_once_and_real_speech_makes_it_an_interruption(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, **TWO_STEP) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)

        started_at = time.time() - 0.3
        await h.speech(call_id, "started", utterance_id="u2", started_at=started_at)
        await h.speech(call_id, "continuing", voiced_ms=200, utterance_id="u2", started_at=started_at)
        assert h.controls == [], "200 ms of speech does not stop the agent"
        await h.speech(call_id, "continuing", voiced_ms=250, utterance_id="u2", started_at=started_at)
        # No waiting: the pause went out while that one message was handled.
        assert [(c.action, c.turn_id) for c in h.controls] == [("pause", turn_id)]
        (paused,) = h.named(TURN_PAUSED)
        assert 300 <= paused.data["reaction_ms"] < 1500
        sent = len(h.turn(turn_id))
        await until(lambda: len(h.turn(turn_id)) > sent)
        assert h.model.stopped == 0, "a pause keeps the reply coming: it may be needed yet"

        await h.speech(call_id, "continuing", voiced_ms=600, utterance_id="u2", started_at=started_at)
        assert [c.action for c in h.controls] == ["pause", "interrupt"]
        await until(lambda: h.model.stopped == 1)  # now the LLM stream is cancelled
        spoken = len(h.turn(turn_id))
        await asyncio.sleep(0.2)
        assert len(h.turn(turn_id)) == spoken and not any(c.final for c in h.turn(turn_id))

        (event,) = h.named(TURN_BARGE_IN)
        assert event.turn_id == turn_id and event.data["trigger"] == "voiced" and event.data["paused"]
        assert event.data["voiced_ms"] == 600 and event.data["heard_text"] == ""
        assert event.data["reaction_ms"] == paused.data["reaction_ms"], "the caller stopped hearing it at the pause"
        assert h.named(TURN_RESUMED) == []


async def test_without_a_pause_step_the_threshold_interrupts_at_once(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, barge_in_min_ms=300,
                            barge_in_confirm_ms=0) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.speech(call_id, "started", utterance_id="u2")
        await h.speech(call_id, "continuing", voiced_ms=250, utterance_id="u2")
        assert h.controls == []
        await h.speech(call_id, "continuing", voiced_ms=300, utterance_id="u2")
        assert [(c.action, c.turn_id) for c in h.controls] == [("interrupt", turn_id)]
        await until(lambda: h.model.stopped == 1)
        assert h.named(TURN_PAUSED) == [] and h.named(TURN_BARGE_IN)[0].data["paused"] is False


async def test_a_paused_agent_with_nothing_said_goes_on_after_hold_resume_s(make_harness, scripted, until):
    async with make_harness(scripted(SLOW[:5], delay=0.05), play_s=None, hold_resume_s=0.3, **TWO_STEP) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        first = h.turn(turn_id)[0]
        await h.heard(first)
        await h.speech(call_id, "started", utterance_id="n1")
        await h.speech(call_id, "continuing", voiced_ms=300, utterance_id="n1")
        await h.heard(h.turn(turn_id)[1], cleared=True)  # the pause cleared the second sentence
        await h.speech(call_id, "stopped", voiced_ms=320, utterance_id="n1")  # a door slam: no transcript
        await until(lambda: h.named(TURN_RESUMED), timeout=2)
        assert [c.action for c in h.controls] == ["pause", "resume"]
        assert h.named(TURN_RESUMED)[0].data["why"] == "no words"
        assert h.named(TURN_RESUMED)[0].data["heard_seq"] == first.seq, "it goes on after what was heard"

        await until(lambda: any(c.final for c in h.turn(turn_id)))
        for chunk in h.turn(turn_id)[1:]:  # the edge played the rest again, under replayed marks
            await h.heard(chunk, replay=1)
        h.model.pieces = ["Sure."]
        await h.say(call_id, "Thanks, and Lyon?", utterance_id="q2")
        await until(lambda: len(h.model.calls) == 2)
        assert h.model.calls[1][-2] == {"role": "assistant", "content": h.said().split(" Sure.")[0]}
        assert "interrupted" not in h.model.calls[1][-2]["content"]


async def test_a_noise_that_recognises_as_nothing_resumes_the_agent(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, hold_resume_s=5.0, **TWO_STEP) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        await speaking_turn(h, until, call_id)
        await h.speech(call_id, "started", utterance_id="c1")
        await h.speech(call_id, "continuing", voiced_ms=300, utterance_id="c1")
        await h.speech(call_id, "stopped", voiced_ms=300, utterance_id="c1")
        await h.event(call_id, STT_EMPTY, utterance_id="c1", reason="no words")
        await until(lambda: [c.action for c in h.controls] == ["pause", "resume"], timeout=1)
        assert h.model.stopped == 0 and h.named(TURN_BARGE_IN) == []


async def test_history_after_an_interruption_holds_only_what_was_heard(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, **TWO_STEP) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.heard(h.turn(turn_id)[0])  # the caller heard the first sentence, not the second

        await h.speech(call_id, "started", utterance_id="u2")
        await h.speech(call_id, "continuing", voiced_ms=600, utterance_id="u2")
        (event,) = h.named(TURN_BARGE_IN)
        assert event.data["heard_text"] == "The capital of France is Paris."

        h.model.pieces, h.model.delay = ["Sure, Lyon."], 0.0
        await h.speech(call_id, "stopped", utterance_id="u2")
        await h.say(call_id, "What about Lyon?", utterance_id="u2")
        await until(lambda: any(c.final for c in h.answers()))

        history = h.model.calls[-1]
        assert [(m["role"], m["content"]) for m in history[2:]] == [
            ("user", "Tell me about Paris."),
            ("assistant", "The capital of France is Paris. — [interrupted by the caller]"),
            ("user", "What about Lyon?"),
        ]


async def test_cleared_marks_do_not_count_as_heard(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        first, second = h.turn(turn_id)[:2]
        await h.heard(first)
        await h.heard(second, cleared=True)  # the edge cleared it: never played
        await h.say(call_id, "Wait, stop.", utterance_id="u2")  # no speech events: the final alone
        (event,) = h.named(TURN_BARGE_IN)
        assert event.data["heard_text"] == "The capital of France is Paris." and event.data["trigger"] == "final"


async def test_backchannels_while_the_agent_talks_neither_interrupt_nor_start_a_turn(make_harness, scripted,
                                                                                    until):
    async with make_harness(scripted(SLOW[:5], delay=0.15), play_s=None) as h:  # the service's defaults
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)

        # Voiced lengths as the STT measures the local voice saying them: none reaches the pause
        # threshold, so the edge hears of none of them; a long, slow "mm-hmm" pauses the agent and
        # it goes on the moment the burst ends, before its words are known.
        for uid, text, voiced in [("b1", "Uh-huh.", 280), ("b2", "Okay.", 380), ("b3", "Mm-hmm.", 520),
                                  ("b4", "(coughs)", 200), ("b5", "Mm-hmm.", 720)]:
            await h.speech(call_id, "started", utterance_id=uid)
            for ms in range(50, voiced, 50):
                await h.speech(call_id, "continuing", voiced_ms=ms, utterance_id=uid)
            await h.speech(call_id, "stopped", voiced_ms=voiced, utterance_id=uid)
            await h.say(call_id, text, utterance_id=uid, is_final=False, end_of_turn=False)  # interim
            await h.say(call_id, text, utterance_id=uid)  # final

        await until(lambda: any(c.final for c in h.turn(turn_id)), timeout=5)
        assert [c.action for c in h.controls] == ["pause", "resume"], "only the 720 ms one paused it"
        assert h.named(TURN_BARGE_IN) == [] and h.model.stopped == 0
        assert [e.data["why"] for e in h.named(TURN_RESUMED)] == ["short burst"]
        assert {c.turn_id for c in h.answers()} == {turn_id}, "no new turn for a backchannel"
        assert len(h.model.calls) == 1
        assert h.said() == "".join(SLOW[:5]).replace("  ", " ")


async def test_a_real_interruption_still_stops_the_agent_with_the_services_defaults(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.speech(call_id, "started", utterance_id="w1")
        for ms in range(50, 1050, 50):  # "Sorry, wait, stop. What time do you open?" without a gap
            await h.speech(call_id, "continuing", voiced_ms=ms, utterance_id="w1")
        assert [(c.action, c.turn_id) for c in h.controls] == [("pause", turn_id), ("interrupt", turn_id)]
        await until(lambda: h.model.stopped == 1)
        (event,) = h.named(TURN_BARGE_IN)
        assert event.data["trigger"] == "voiced" and event.data["paused"]


async def test_a_caller_who_goes_on_as_the_answer_starts_playing_stops_it_at_once(make_harness, scripted, until):
    model = scripted(["Sure, a table.", " For how many?"], delay=0.05)
    async with make_harness(model, play_s=None) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        await h.say(call_id, "I'd like to book a table.", utterance_id="u1")  # the STT ended the turn early
        await until(lambda: len(h.answers()) >= 1)
        answer = h.answers()[0]
        await h.speech(call_id, "started", voiced_ms=60, utterance_id="u2")  # ... but the caller goes on
        assert [(c.action, c.turn_id) for c in h.controls] == [("pause", answer.turn_id)], \
            "the agent yields before its audio plays, not after 250 ms of talking over it"
        await h.speech(call_id, "stopped", voiced_ms=900, utterance_id="u2")
        model.pieces = ["Booked for Tuesday."]
        await h.say(call_id, "For Tuesday evening.", utterance_id="u2")
        await until(lambda: "Booked for Tuesday." in h.said())
        assert [c.action for c in h.controls] == ["pause", "interrupt"]
        # none of the first answer played: the model sees one request, not a reply it never gave
        assert model.calls[-1][-1] == {"role": "user", "content": "I'd like to book a table. For Tuesday evening."}


async def test_a_pause_nothing_decides_does_not_last(make_harness, scripted, until):
    """Deepgram reports the start of a noise but no end and no words: the answer still plays."""
    async with make_harness(scripted(["Sure, a table.", " For how many?"], delay=0.05), play_s=None,
                            hold_resume_s=0.2) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        await h.say(call_id, "I'd like to book a table.", utterance_id="u1")
        await until(lambda: len(h.answers()) >= 1)
        await h.speech(call_id, "started", utterance_id="n1")  # as the answer starts: it yields
        assert [c.action for c in h.controls] == ["pause"]
        await until(lambda: [c.action for c in h.controls] == ["pause", "resume"], timeout=2)
        assert h.named(TURN_RESUMED)[0].data["why"] == "no words"


async def test_a_backchannel_then_real_words_in_one_breath_interrupts(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, **TWO_STEP) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.speech(call_id, "started", utterance_id="m1")
        await h.speech(call_id, "continuing", voiced_ms=300, utterance_id="m1")
        await h.say(call_id, "Okay.", utterance_id="m1", is_final=False, end_of_turn=False)
        assert [c.action for c in h.controls] == ["pause", "resume"]
        await h.speech(call_id, "continuing", voiced_ms=450, utterance_id="m1")
        assert [c.action for c in h.controls] == ["pause", "resume"], "not paused again by the same 300 ms"
        await h.speech(call_id, "continuing", voiced_ms=550, utterance_id="m1")
        assert [c.action for c in h.controls] == ["pause", "resume", "pause"]
        await h.say(call_id, "Okay, but wait.", utterance_id="m1", is_final=False, end_of_turn=False)
        assert [(c.action, c.turn_id) for c in h.controls][-1] == ("interrupt", turn_id)
        assert h.named(TURN_BARGE_IN)[0].data["trigger"] == "interim"


async def test_an_interim_with_real_words_interrupts(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.say(call_id, "Mm-hmm.", utterance_id="u2", is_final=False, end_of_turn=False)
        assert h.controls == []
        await h.say(call_id, "Stop.", utterance_id="u3", is_final=False, end_of_turn=False)  # 230 ms: no pause yet
        assert [(c.action, c.turn_id) for c in h.controls] == [("interrupt", turn_id)]
        assert h.named(TURN_BARGE_IN)[0].data["trigger"] == "interim"


async def test_speech_while_the_agent_is_silent_interrupts_nothing(make_harness, scripted, until):
    async with make_harness(scripted(["Paris."]), play_s=0.01) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Capital of France?")
        await until(lambda: any(c.final for c in h.answers()))
        await h.played()
        await h.speech(call_id, "started", utterance_id="u2")
        await h.speech(call_id, "continuing", voiced_ms=900, utterance_id="u2")
        assert h.controls == [] and h.named(TURN_BARGE_IN) == []


async def test_talking_over_the_greeting_cuts_it(make_harness, scripted, until):
    async with make_harness(scripted(["Sure."]), play_s=None, **TWO_STEP) as h:
        call_id = await h.start_call()
        greeting = await h.greeted()
        await h.speech(call_id, "started", utterance_id="u1")
        await h.speech(call_id, "continuing", voiced_ms=600, utterance_id="u1")
        assert [(c.action, c.turn_id) for c in h.controls] == [("interrupt", greeting.turn_id)]
        await h.say(call_id, "I need help with my order.", utterance_id="u1")
        await until(lambda: h.model.calls)
        assert h.model.calls[0][1] == {"role": "assistant",
                                       "content": "[interrupted by the caller before saying anything]"}


async def test_a_backchannel_just_after_the_agent_finished_is_not_a_turn_but_yes_to_a_question_is(
        make_harness, scripted, until):
    async with make_harness(scripted(["Your table is booked."]), play_s=0.01) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Book a table for two.", utterance_id="q1")
        await until(lambda: any(c.final for c in h.answers()))
        await h.played()
        await h.say(call_id, "Okay.", utterance_id="b1", speech_started_at=time.time() - 0.3)
        await asyncio.sleep(0.2)
        assert len(h.model.calls) == 1, "'okay' right after the agent spoke is acknowledgement"

        h.model.pieces = ["Would you like a reminder?"]
        await h.say(call_id, "Thanks. Can you remind me?", utterance_id="q2")
        await until(lambda: len(h.model.calls) == 2)
        await until(lambda: sum(c.final for c in h.answers()) == 2)
        await h.played()
        h.model.pieces = ["Done."]
        await h.say(call_id, "Yes.", utterance_id="q3", speech_started_at=time.time() - 0.3)
        await until(lambda: len(h.model.calls) == 3)
        assert h.model.calls[2][-1] == {"role": "user", "content": "Yes."}


async def test_an_interrupt_from_elsewhere_cuts_the_turn_too(make_harness, scripted, until):
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None) as h:
        call_id = await h.start_call()
        await heard_greeting(h)
        turn_id = await speaking_turn(h, until, call_id)
        await h.heard(h.turn(turn_id)[0])
        await h.control(call_id, "interrupt", turn_id=turn_id)
        await until(lambda: h.model.stopped == 1)
        h.model.pieces, h.model.delay = ["Okay."], 0.0
        await h.say(call_id, "Go on.", utterance_id="u2")
        await until(lambda: len(h.model.calls) == 2)
        assert h.model.calls[1][-2]["content"] == "The capital of France is Paris. — [interrupted by the caller]"


async def test_a_caller_who_goes_on_talking_gets_one_answer_to_the_whole_sentence(make_harness, scripted, until):
    model = scripted(["Booked for Tuesday."], first_delay=0.3)
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "I'd like to book a table.", utterance_id="u1")  # the STT ended the turn early
        await until(lambda: model.calls)
        await h.speech(call_id, "started", utterance_id="u2")  # ... but the caller goes on
        await asyncio.sleep(0.5)
        assert h.answers() == [], "nothing is said over the caller"
        await h.speech(call_id, "stopped", voiced_ms=700, utterance_id="u2")
        await h.say(call_id, "For Tuesday evening.", utterance_id="u2")
        await until(lambda: any(c.final for c in h.answers()))
        assert {c.in_reply_to for c in h.answers()} == {"u2"} and h.said() == "Booked for Tuesday."
        assert model.calls[-1][-1] == {"role": "user", "content": "I'd like to book a table. For Tuesday evening."}


async def test_a_held_reply_goes_out_after_a_cough_or_an_um(make_harness, scripted, until):
    model = scripted(["Sure."], first_delay=0.2)
    async with make_harness(model, hold_resume_s=1.0) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Can you help me?", utterance_id="u1")
        await h.speech(call_id, "started", utterance_id="c1")
        await h.speech(call_id, "stopped", voiced_ms=120, utterance_id="c1")  # a cough: no transcript follows
        await asyncio.sleep(0.45)
        assert h.answers() == []
        await until(lambda: any(c.final for c in h.answers()), timeout=2)
        assert h.said() == "Sure." and len(model.calls) == 1

        model.pieces = ["Of course."]
        await h.played()
        await h.say(call_id, "And with my order?", utterance_id="u2")
        await h.speech(call_id, "started", utterance_id="c2")
        await h.speech(call_id, "stopped", voiced_ms=200, utterance_id="c2")
        await h.say(call_id, "Um.", utterance_id="c2")
        said = time.monotonic()
        await until(lambda: "Of course." in h.said())
        assert time.monotonic() - said < 0.8, "at once, not after hold_resume_s"
        assert len(model.calls) == 2


async def test_an_agents_own_barge_in_thresholds_apply_to_its_calls(make_harness, scripted, until, tmp_path):
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  - id: patient\n    turn_taking: {barge_in_min_ms: 400, barge_in_confirm_ms: 0}\n"
                      "  - id: quick\n")
    async with make_harness(scripted(SLOW, delay=0.05), play_s=None, agents_file=agents, **TWO_STEP) as h:
        for call_id, agent in (("c-patient", "patient"), ("c-quick", "quick")):
            await h.start_call(call_id, agent_id=agent)
            await h.heard(await h.greeted())
            h.replies.clear()
            turn_id = await speaking_turn(h, until, call_id)
            await h.speech(call_id, "started", utterance_id=f"{call_id}-u")
            await h.speech(call_id, "continuing", voiced_ms=300, utterance_id=f"{call_id}-u")
            actions = [c.action for c in h.controls if c.call_id == call_id]
            if agent == "patient":
                assert actions == [], "300 ms is under this agent's 400 ms"
                await h.speech(call_id, "continuing", voiced_ms=400, utterance_id=f"{call_id}-u")
                assert [(c.action, c.turn_id) for c in h.controls if c.call_id == call_id] == [("interrupt", turn_id)]
            else:
                assert actions == ["pause"], "the service's 250 ms for an agent that sets nothing"
