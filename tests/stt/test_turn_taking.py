"""Natural turn-taking on real speech (Piper's joe voice over mu-law) and the real Whisper model:
the caller's turn ends when the silence *and* the words say so.

The caller waits for each early decode before sending the next frame (see `Call.say`), so the
silence a turn waited for is exact whatever the machine's load; the bench measures real time.
"""

from __future__ import annotations

import asyncio
import logging
import time

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.messages import CallEnd

from .conftest import CALL

pytestmark = pytest.mark.integration


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


def utterance_events(call, name: str = "stt.utterance"):
    return [e for e in call.events if e.name == name]


async def test_a_pause_inside_an_unfinished_sentence_does_not_end_the_turn(call, speak, silence):
    # "I'd like to book a table for, um ... Tuesday evening.": 600 ms of silence after "for"
    first, second = speak("I'd like to book a table for, um"), speak("Tuesday evening.")
    audio = np.concatenate([silence(400, noise=20), first, silence(600), second, silence(1200, noise=20)])
    await call.say(audio, time.time() - len(audio) / 8000)
    await call.wait_for(1)
    await asyncio.sleep(0.3)

    [final] = call.finals
    assert {"table", "tuesday", "evening"} <= words(final.text)
    assert final.end_reason == "complete"
    interims = [t for t in call.transcripts if not t.is_final]
    assert interims and "tuesday" not in words(interims[0].text)  # it heard the first half, held on
    assert {t.utterance_id for t in call.transcripts} == {final.utterance_id}
    assert [s.kind for s in call.speech if s.kind != "continuing"] == ["started", "stopped"]
    assert final.speech_ended_at - final.speech_started_at > (len(first) + 4800 + len(second)) / 8000 - 0.6


async def test_a_complete_sentence_ends_the_turn_after_a_short_silence(call, speak, silence):
    speech = speak("What time does the pharmacy close on Saturday?")
    audio = np.concatenate([silence(400, noise=20), speech, silence(1200, noise=20)])
    await call.say(audio, time.time() - len(audio) / 8000)
    await call.wait_for(1)

    [final] = call.finals
    assert {"pharmacy", "saturday"} <= words(final.text)
    assert final.end_reason == "complete"
    [event] = utterance_events(call)
    assert 350 <= event.data["silence_waited_ms"] < 400  # not the 600 ms plain-silence threshold
    assert event.data["end_reason"] == "complete" and event.data["early_decode"] is True
    assert event.data["end_of_turn_ms"] > 0
    assert event.timing is not None and event.timing.transcript_at == final.emitted_at
    # the interim came first, with the same utterance and the same words
    interim = call.transcripts[0]
    assert not interim.is_final and not interim.end_of_turn
    assert interim.utterance_id == final.utterance_id and interim.text == final.text
    assert event.data["interim_equal"] is True


async def test_an_unfinished_sentence_ends_at_the_backstop(call, speak, silence):
    speech = speak("So I was wondering if")
    audio = np.concatenate([silence(400, noise=20), speech, silence(2500, noise=20)])
    await call.say(audio, time.time() - len(audio) / 8000)
    await call.wait_for(1)

    [final] = call.finals
    assert {"wondering", "if"} <= words(final.text)
    assert final.end_reason == "backstop"
    [event] = utterance_events(call)
    assert event.data["silence_waited_ms"] == 1500


async def test_continuing_events_carry_the_growing_voiced_time(call, speak, silence):
    speech = speak("Please transfer me to someone in billing.")
    audio = np.concatenate([silence(400, noise=20), speech, silence(1000, noise=20)])
    await call.say(audio, time.time() - len(audio) / 8000)
    await call.wait_for(1)

    started, *ticks, stopped = call.speech
    assert (started.kind, stopped.kind) == ("started", "stopped")
    assert {t.kind for t in ticks} == {"continuing"} and len(ticks) >= 20
    voiced = [t.voiced_ms for t in ticks]
    assert voiced == sorted(voiced) and len(set(voiced)) == len(voiced)
    assert max(b - a for a, b in zip([started.voiced_ms, *voiced], voiced, strict=False)) <= 60
    assert all(t.started_at == started.at and started.at < t.at <= stopped.at for t in ticks)
    # voiced time is speech only: less than the span from onset to the last word
    assert voiced[-1] <= stopped.voiced_ms <= (stopped.at - started.at) * 1000 + 1


async def test_hanging_up_mid_utterance_leaves_no_transcript_and_no_errors(call, speak, silence, caplog):
    speech = speak("Could you call me back later this afternoon?")
    audio = np.concatenate([silence(400, noise=20), speech, silence(200, noise=20)])
    await call.say(audio, time.time() - len(audio) / 8000, settle=False)  # an early decode starts
    await call.broker.publish(CallEnd(call_id=CALL, reason="caller hung up"), subjects.CALLS_END)
    await asyncio.sleep(1.0)
    assert call.transcripts == [] and utterance_events(call, "stt.empty") == []
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
