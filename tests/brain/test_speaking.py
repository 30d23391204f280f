"""The agent-speaking state: from the first chunk until the final mark comes back."""

from __future__ import annotations

import asyncio

import pytest

from ringline.contracts.messages import Playback, ReplyChunk, make_mark
from ringline.services.brain.speaking import SpeakingTracker

pytestmark = pytest.mark.unit


def chunk(turn: str, seq: int, text: str, final: bool = False) -> ReplyChunk:
    return ReplyChunk(call_id="c", turn_id=turn, seq=seq, text=text, final=final)


def mark(turn: str, seq: int, cleared: bool = False) -> Playback:
    return Playback(call_id="c", mark=make_mark(turn, seq), turn_id=turn, cleared=cleared)


async def test_speaking_from_the_first_chunk_until_the_final_mark():
    ended: list[tuple[str, str]] = []
    tracker = SpeakingTracker(lambda t, how: ended.append((t, how)))
    assert not tracker.speaking
    tracker.sent(chunk("t1", 0, "One."))
    assert tracker.speaking
    tracker.on_playback(mark("t1", 0))
    tracker.sent(chunk("t1", 1, "Two.", final=True))
    assert tracker.speaking and tracker.heard_text("t1") == "One."
    tracker.on_playback(mark("t1", 1))
    assert not tracker.speaking and ended == [("t1", "heard")]
    assert await tracker.wait_finished("t1", 0.1) == "heard"


async def test_an_interrupted_turn_keeps_what_was_heard_and_ignores_later_marks():
    tracker = SpeakingTracker()
    for seq, text in enumerate(["One.", "Two.", "Three."]):
        tracker.sent(chunk("t1", seq, text, final=seq == 2))
    tracker.on_playback(mark("t1", 0))
    assert tracker.interrupt("t1") == "One."
    tracker.on_playback(mark("t1", 1, cleared=True))
    tracker.on_playback(mark("t1", 2))
    assert not tracker.speaking and tracker.heard_text("t1") == "One."


async def test_a_mark_that_never_comes_back_times_out_by_the_length_of_the_text():
    tracker = SpeakingTracker(chars_per_s=100.0, slack_s=0.05)
    tracker.sent(chunk("t1", 0, "x" * 10, final=True))  # 0.1 s of speech + 0.05 s
    assert await tracker.wait_finished("t1", 0.05) is None
    assert await tracker.wait_finished("t1", 0.5) == "timeout"


async def test_foreign_and_malformed_marks_are_ignored():
    tracker = SpeakingTracker()
    tracker.sent(chunk("t1", 0, "Hi.", final=True))
    for name in ["", "nonsense", "other:0", "t1:x", ":3"]:
        tracker.on_playback(Playback(call_id="c", mark=name))
    assert tracker.speaking
    tracker.close()
    await asyncio.sleep(0)
