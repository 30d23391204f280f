"""What the stt session tells its recognizer about the call: the agent's keyterms (from the call
start) and the conversation so far (the agent's reply chunks, the caller's final transcripts).
Whisper takes it as its prompt (test_recognizer shows what that changes on real speech)."""

from __future__ import annotations

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.messages import ReplyChunk

from .conftest import SESSION_CALL as CALL
from .conftest import ScriptedRecognizer

pytestmark = pytest.mark.service


async def say_and_wait(harness, tone, silence, finals: int) -> None:
    await harness.send(np.concatenate([silence(200), tone(700), silence(1200)]))
    await harness.until(lambda: len(harness.finals) >= finals)


async def test_the_recognizer_hears_the_keyterms_the_agents_question_and_the_callers_last_words(
    harness_factory, tone, silence
):
    recognizer = ScriptedRecognizer(texts=["Hi, I'd like to book a cleaning.", "Next Tuesday."])
    harness = await harness_factory(recognizer, custom={"stt_keyterms": "Brightside Dental, Dr. Okafor"})
    await say_and_wait(harness, tone, silence, 1)
    first = recognizer.hints[-1]
    assert first.keyterms == ("Brightside Dental", "Dr. Okafor") and first.recent == ()

    for seq, text in enumerate(["Sure.", "What day would you like?"]):  # one agent turn, two chunks
        chunk = ReplyChunk(call_id=CALL, turn_id="t-1", seq=seq, text=text, final=seq == 1)
        await harness.service.broker.publish(chunk, subjects.reply(CALL))
    await say_and_wait(harness, tone, silence, 2)
    assert recognizer.hints[-1].recent == ("Hi, I'd like to book a cleaning.", "Sure. What day would you like?")
    assert [t.text for t in harness.finals] == ["Hi, I'd like to book a cleaning.", "Next Tuesday."]


async def test_a_call_without_keyterms_starts_with_no_hints(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(texts=["Hello?"])
    harness = await harness_factory(recognizer)
    await say_and_wait(harness, tone, silence, 1)
    assert recognizer.hints and all(h.empty for h in recognizer.hints)
