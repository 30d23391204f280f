"""Natural turn-taking on the real stack (nats-server, the five services, the offline models),
judged as a caller hears it: pauses, interruptions, backchannels and hang-ups.

The protocol under test: STT reports voice activity; a backchannel too short to pause the agent
reaches nobody; the brain pauses a turn the caller talks over (`Control(pause)`), then interrupts
it (`Control(interrupt)`) or, for a short burst or a backchannel, resumes it (`Control(resume)`);
it keeps in its history only what was heard (the call record's `turn.barge_in`), says goodbye and
hangs up only once the goodbye's last mark has come back; the edge clears the phone's buffer
(keeping a paused turn's audio) and reports flushed marks as `cleared`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from ringline.caller import (
    Backchannel,
    CallResult,
    ExpectHangup,
    Hangup,
    Interrupt,
    Pause,
    Say,
    Scenario,
    place_call,
    prepare,
)
from ringline.caller.report import format_result
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

LONG_ASK = "Please tell me a long story about a brave knight and a friendly dragon."
OTHER_LONG_ASK = "Tell me everything you know about how bread is baked, step by step."
CALL = {"reply_timeout": 40.0, "record_timeout": 10.0, "max_reply_s": 60.0}


def call(stack: Stack, voice: Any, steps: list) -> CallResult:
    scenario = prepare(Scenario(steps), voice)
    result = asyncio.run(place_call(stack.edge_url, scenario, nats_url=stack.url, **CALL))
    print(format_result(result))  # shown when a test fails
    return result


def test_a_mid_sentence_pause_does_not_cut_the_caller_off(stack: Stack, voice: Any) -> None:
    result = call(stack, voice, [Say(["I'd like to book a table", Pause(600), "for Tuesday evening."])])
    assert result.ok, result.problems
    (step,) = result.step("say")
    assert step.pauses and abs(step.pauses[0][1] - step.pauses[0][0] - 0.6) < 0.1
    assert step.false_cutoff is False, step.note
    (reply,) = [t for t in result.turns[1:] if t.speaker == "agent"]
    assert reply.mouth_to_ear_ms is not None and reply.mouth_to_ear_ms > 0
    assert not reply.interrupted  # the answer to the whole sentence plays out


def test_an_interruption_stops_the_agent_and_the_history_keeps_only_what_was_heard(stack: Stack,
                                                                                    voice: Any) -> None:
    result = call(stack, voice, [Say(LONG_ASK), Interrupt("Sorry, wait, stop. What time do you open?",
                                                          after_ms=1200)])
    assert result.ok, result.problems
    (step,) = result.step("interrupt")
    assert step.clear_received, step.note
    assert step.audio_after_clear_ms == 0.0
    assert step.barge_in_ms is not None and step.barge_in_ms < 1500
    interrupted = [t for t in result.turns if t.speaker == "agent" and t.interrupted]
    assert len(interrupted) == 1
    # the call record: the brain reported the barge-in, with the part the caller heard
    record = result.record
    assert record is not None, result.record_error
    turn = record.turn(interrupted[0].turn_ids[0])
    assert turn is not None and turn.interrupted, record.turns
    assert len(turn.heard_text) < len(turn.text) and turn.text.startswith(turn.heard_text.strip())
    assert any(e.get("name") == "turn.barge_in" and e.get("turn_id") == turn.turn_id for e in record.events)
    assert any(e.get("name") == "edge.clear" for e in record.events)
    # and the agent answered the interruption afterwards
    assert any(t.speaker == "agent" and not t.interrupted and t.started_at > step.speech_end_at
               for t in result.turns)


def test_backchannels_do_not_stop_the_agent(stack: Stack, voice: Any) -> None:
    result = call(stack, voice, [Say(LONG_ASK), Backchannel("Uh-huh.", after_ms=1000),
                                 Say(OTHER_LONG_ASK), Backchannel("Okay.", after_ms=1200)])
    assert result.ok, result.problems
    short, longer = result.step("backchannel")
    assert short.voiced_ms is not None and short.voiced_ms <= 300
    assert longer.voiced_ms is not None and 300 < longer.voiced_ms <= 500
    assert short.agent_stopped is False and longer.agent_stopped is False, (short.note, longer.note)
    # Neither is long enough to pause the agent: the edge never sends `clear`, the caller hears no stop
    assert not short.clear_received and not longer.clear_received, (short.note, longer.note)
    assert not any(t.interrupted or t.paused for t in result.turns if t.speaker == "agent")
    record = result.record
    assert record is not None, result.record_error
    answers = [t for t in record.turns if t.speaker == "agent" and t.kind != "greeting"]
    assert len(answers) == 2, "a backchannel is no new turn"
    assert not any(t.interrupted for t in answers)
    assert not any(e.get("name") in ("turn.paused", "edge.clear") for e in record.events)


def test_the_agent_hangs_up_only_after_its_goodbye_was_played(stack: Stack, voice: Any) -> None:
    result = call(stack, voice, [Say("That's all, thank you, goodbye."), ExpectHangup(timeout_s=40)])
    assert result.ok, result.problems
    assert result.ended_by == "agent" and result.step("expect_hangup")[0].agent_hung_up
    assert result.hung_up_after_goodbye is True, result.unplayed_at_hangup_ms
    assert result.record is not None and result.record.end_reason == "agent hung up"


def test_a_caller_hanging_up_mid_reply_ends_the_call_cleanly(stack: Stack, voice: Any) -> None:
    log = Path(stack.data_dir) / "logs" / "telephony.log"
    before = log.stat().st_size if log.exists() else 0
    result = call(stack, voice, [Say(LONG_ASK), Hangup(after_ms=1000)])
    assert result.ended_by == "caller" and result.step("hangup")[0].note == "while the reply was playing"
    assert result.record is not None and result.record.end_reason == "caller hung up"
    with log.open("rb") as f:
        f.seek(before)
        written = f.read().decode("utf-8", "replace")
    assert result.call_sid in written  # the edge logged this call ...
    assert " ERROR " not in written and "Traceback" not in written, written  # ... without errors
