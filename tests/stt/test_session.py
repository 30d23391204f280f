"""The stt session on the in-memory broker, with a scripted recognizer (fast, deterministic).

The fake (`ScriptedRecognizer` in conftest) implements the real `Recognizer` interface: it
"recognizes" the audio length (or says a scripted text), so a transcript tells which audio it
was decoded from. Frames are back-dated and sent as fast as the broker takes them; with `settle`
the caller waits for an early decode to come back before the next frame, as if decoding took no
time against real-time audio.
"""

from __future__ import annotations

import asyncio
import logging

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.messages import CallEnd, Control

from .conftest import SESSION_CALL as CALL
from .conftest import ScriptedRecognizer

pytestmark = pytest.mark.service


async def test_startup_loads_the_recognizer_and_claims_the_call(harness_factory):
    recognizer = ScriptedRecognizer()
    harness = await harness_factory(recognizer)
    assert recognizer.loaded
    assert CALL in harness.service.router.sessions
    assert any(e.name == "stage.ready" for e in harness.events)


async def test_early_result_is_the_interim_and_the_final(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(texts=["Book a table for two."])
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(800), silence(700)]))
    await harness.until(lambda: harness.finals)
    assert len(recognizer.calls) == 1  # the speculative decode was the only one
    assert recognizer.calls[0] == 8000 * (200 + 800 + 160) // 1000  # pre-roll, speech, silence so far
    [interim] = harness.interims
    [final] = harness.finals
    assert harness.transcripts.index(interim) < harness.transcripts.index(final)
    assert interim.utterance_id == final.utterance_id
    assert not interim.end_of_turn and final.end_of_turn
    assert interim.text == final.text == "Book a table for two."
    assert final.speech_ended_at - final.speech_started_at == pytest.approx(0.8, abs=0.001)
    assert interim.speech_ended_at == final.speech_ended_at
    [utterance] = harness.named("stt.utterance")
    assert utterance.data["early_decode"] is True and utterance.data["interim_equal"] is True
    assert utterance.timing and utterance.timing.speech_ended_at == final.speech_ended_at


@pytest.mark.parametrize(
    ("text", "reason", "silence_ms"),
    [
        ("Book a table for two.", "complete", 360),  # first frame with >= 350 ms of silence
        ("book a table for two", "silence", 600),  # no punctuation: cannot tell
        ("Book a table for...", "backstop", 1500),  # trails off, and the caller never goes on
    ],
)
async def test_the_text_decides_how_much_silence_ends_the_turn(
    harness_factory, tone, silence, text, reason, silence_ms
):
    harness = await harness_factory(ScriptedRecognizer(texts=[text]))
    await harness.send(np.concatenate([silence(300), tone(800), silence(2000)]))
    await harness.until(lambda: harness.finals)
    [final] = harness.finals
    assert final.end_reason == reason
    [utterance] = harness.named("stt.utterance")
    assert utterance.data["silence_waited_ms"] == silence_ms
    assert utterance.data["end_reason"] == reason
    stopped = [s for s in harness.speech if s.kind == "stopped"]
    assert len(stopped) == 1 and stopped[0].at == final.speech_ended_at


async def test_the_agents_end_of_turn_timing_rides_on_the_call(harness_factory, tone, silence, caplog):
    custom = {"stt_complete_silence_ms": "900", "stt_end_silence_ms": "soon"}  # set by the edge, per agent
    harness = await harness_factory(ScriptedRecognizer(texts=["Book a table for two."]), custom=custom)
    with caplog.at_level(logging.WARNING, logger="ringline.stt.settings"):
        await harness.send(np.concatenate([silence(300), tone(800), silence(2000)]))
        await harness.until(lambda: harness.finals)
    [utterance] = harness.named("stt.utterance")
    assert utterance.data["end_reason"] == "complete" and utterance.data["silence_waited_ms"] == 900
    assert "ignoring stt_end_silence_ms='soon'" in caplog.text


async def test_an_unfinished_sentence_waits_for_the_caller_to_go_on(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(texts=["I'd like to book a table for", "... for Tuesday."])
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(800), silence(1000), tone(500), silence(700)]))
    await harness.until(lambda: harness.finals)
    await asyncio.sleep(0.05)
    [final] = harness.finals
    assert final.text == "... for Tuesday." and final.end_reason == "complete"
    assert final.speech_ended_at - final.speech_started_at == pytest.approx(2.3, abs=0.001)
    assert [t.text for t in harness.interims] == ["I'd like to book a table for", "... for Tuesday."]
    assert len({t.utterance_id for t in harness.transcripts}) == 1
    assert [s.kind for s in harness.speech if s.kind != "continuing"] == ["started", "stopped"]


async def test_early_result_is_discarded_when_speech_resumes(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(delays=[0.2, 0.01])
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(600), silence(300)]), settle=False)
    await harness.send(np.concatenate([tone(600), silence(700)]))  # the caller goes on mid-decode
    await harness.until(lambda: harness.finals)
    await asyncio.sleep(0.25)
    assert len(harness.finals) == 1
    whole = 8000 * (200 + 600 + 300 + 600 + 160) // 1000
    assert harness.finals[0].text == f"{whole} samples"
    assert [t.text for t in harness.interims] == [f"{whole} samples"]  # the stale one never left
    session = harness.service.router.sessions[CALL]
    assert session.stats.early_discarded == 1 and session.stats.early_used == 1


async def test_without_early_decode_the_turn_ends_on_silence_alone(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(texts=["Book a table for"])
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(800), silence(700)]))
    await harness.until(lambda: harness.finals)
    assert len(recognizer.calls) == 1 and harness.interims == []
    assert harness.finals[0].end_reason == "silence"
    assert harness.named("stt.utterance")[0].data["silence_waited_ms"] == 600


async def test_max_length_ends_the_turn_and_the_caller_carries_on(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(texts=["A long story", "The end."])
    harness = await harness_factory(recognizer, max_utterance_ms=2000)
    await harness.send(np.concatenate([silence(300), tone(2500), silence(700)]))
    await harness.until(lambda: len(harness.finals) == 2)
    first, second = harness.finals
    assert first.end_reason == "max_length" and first.text == "A long story"
    assert first.speech_ended_at - first.speech_started_at == pytest.approx(2.0, abs=0.001)
    assert second.end_reason == "complete" and second.utterance_id != first.utterance_id


async def test_speech_events_bracket_each_utterance(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer(texts=["One.", "Two."]))
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len(harness.finals) == 2)
    brackets = [s for s in harness.speech if s.kind != "continuing"]
    assert [s.kind for s in brackets] == ["started", "stopped", "started", "stopped"]
    first, second = harness.finals
    assert brackets[0].utterance_id == brackets[1].utterance_id == first.utterance_id
    assert brackets[2].utterance_id == second.utterance_id != first.utterance_id
    assert brackets[1].at == first.speech_ended_at
    assert brackets[0].started_at == brackets[1].started_at == first.speech_started_at


async def test_continuing_events_grow_every_50ms_without_waiting_for_decodes(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(delays=[3.0])  # the first utterance's decode takes ages
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(400), silence(800)]))
    await harness.until(lambda: recognizer.calls)
    await harness.send(np.concatenate([tone(600)]))  # meanwhile the caller speaks again
    second = [s for s in harness.speech if s.utterance_id != harness.speech[0].utterance_id]
    assert second[0].kind == "started" and second[0].voiced_ms == 60
    ticks = [s for s in second if s.kind == "continuing"]
    voiced = [s.voiced_ms for s in ticks]
    assert voiced == sorted(voiced) and voiced[-1] == 600 and len(ticks) >= 10
    assert all(b - a <= 60 for a, b in zip([60, *voiced], voiced, strict=False))
    assert all(s.started_at == second[0].at for s in ticks)
    assert harness.finals == []  # all of that while the first decode still runs


async def test_transcripts_keep_utterance_order_when_decodes_finish_out_of_order(
    harness_factory, tone, silence
):
    recognizer = ScriptedRecognizer(delays=[0.5, 0.01], texts=["first", "second"])
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len(harness.finals) == 2)
    assert [t.text for t in harness.finals] == ["first", "second"]


async def test_empty_recognition_reports_an_event_and_no_transcript(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer(texts=["", "boom"]))
    await harness.send(np.concatenate([silence(300), tone(500), silence(800), tone(500), silence(800)]))
    await harness.until(lambda: len(harness.named("stt.empty")) == 2)
    assert harness.transcripts == []
    empty, failed = harness.named("stt.empty")
    assert empty.data["reason"] == "no words" and empty.data["end_reason"] == "silence"
    assert "model exploded" in failed.data["reason"]


async def test_call_end_cancels_a_pending_decode(harness_factory, tone, silence):
    recognizer = ScriptedRecognizer(delays=[5.0])
    harness = await harness_factory(recognizer, early_decode_ms=0)
    await harness.send(np.concatenate([silence(300), tone(500), silence(800)]))
    await harness.until(lambda: recognizer.calls)
    await harness.service.broker.publish(CallEnd(call_id=CALL), subjects.CALLS_END)
    await asyncio.sleep(0.1)
    assert CALL not in harness.service.router.sessions
    assert recognizer.completed == [] and harness.finals == []


async def test_hanging_up_mid_utterance_stops_decoding_quietly(harness_factory, tone, silence, caplog):
    recognizer = ScriptedRecognizer(delays=[5.0])
    harness = await harness_factory(recognizer)
    await harness.send(np.concatenate([silence(300), tone(800), silence(200)]), settle=False)
    await harness.until(lambda: recognizer.calls)  # the early decode runs...
    control = Control(call_id=CALL, action="ended", reason="caller hung up")
    await harness.service.broker.publish(control, subjects.control(CALL))  # ...the caller hangs up
    await harness.send(np.concatenate([tone(300), silence(2000)]), settle=False)  # stray frames
    await harness.service.broker.publish(CallEnd(call_id=CALL), subjects.CALLS_END)
    await asyncio.sleep(0.1)
    assert recognizer.completed == [] and len(recognizer.calls) == 1
    assert harness.transcripts == [] and harness.named("stt.empty") == []
    assert [s.kind for s in harness.speech if s.kind != "continuing"] == ["started"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_sequence_gaps_do_not_stall(harness_factory, tone, silence):
    harness = await harness_factory(ScriptedRecognizer())
    harness.seq = 10
    await harness.send(np.concatenate([silence(300), tone(300)]))
    harness.seq += 7  # lost frames
    await harness.send(np.concatenate([tone(300), silence(800)]))
    await harness.until(lambda: harness.finals)
    assert harness.service.router.sessions[CALL].stats.seq_gaps == 1
