"""Is the agent speaking, and what has the caller heard? From chunks out and marks echoed."""

from __future__ import annotations

import pytest

from ringline.contracts.messages import Control, Playback, make_mark
from ringline.services.brain.actions import Arm, End
from ringline.services.brain.decide import decide
from ringline.services.brain.events import ChunkOut, TimerFired
from ringline.services.brain.rules import Rules
from ringline.services.brain.state import TurnState
from ringline.services.brain.transition import apply

pytestmark = pytest.mark.unit


class Playing:
    """One call's state, fed events through the decisions the way the session does."""

    def __init__(self, rules: Rules | None = None) -> None:
        self.state = TurnState(stage="talking", greeted=True)
        self.rules = rules or Rules(silence_first_s=0)
        self.ended: list[tuple[str, str]] = []

    def feed(self, event: object) -> list[object]:
        actions = decide(self.state, event, self.rules, 1000.0)
        for action in actions:
            apply(self.state, action)
            if isinstance(action, End):
                self.ended.append((action.turn_id, action.how))
        return actions

    def sent(self, turn: str, seq: int, text: str, final: bool = False) -> list[object]:
        return self.feed(ChunkOut(turn, seq, text, final, "answer"))

    def mark(self, turn: str, seq: int, cleared: bool = False) -> list[object]:
        return self.feed(Playback(call_id="c", mark=make_mark(turn, seq), turn_id=turn, cleared=cleared))


def test_speaking_from_the_first_chunk_until_the_final_mark():
    call = Playing()
    assert not call.state.speaking
    call.sent("t1", 0, "One.")
    assert call.state.speaking
    call.mark("t1", 0)
    call.sent("t1", 1, "Two.", final=True)
    assert call.state.speaking and call.state.heard_text("t1") == "One."
    call.mark("t1", 1)
    assert not call.state.speaking and call.ended == [("t1", "heard")]


def test_an_interrupted_turn_keeps_what_was_heard_and_ignores_later_marks():
    call = Playing()
    for seq, text in enumerate(["One.", "Two.", "Three."]):
        call.sent("t1", seq, text, final=seq == 2)
    call.mark("t1", 0)
    call.feed(Control(call_id="c", action="interrupt", turn_id="t1"))
    assert call.ended == [("t1", "interrupted")] and call.state.heard_text("t1") == "One."
    call.mark("t1", 1, cleared=True)
    call.mark("t1", 2)
    assert not call.state.speaking and call.state.heard_text("t1") == "One."


def test_a_mark_that_never_comes_back_times_out_by_the_length_of_the_text():
    call = Playing(Rules(chars_per_s=100.0, slack_s=0.05, silence_first_s=0))
    actions = call.sent("t1", 0, "x" * 10, final=True)  # 0.1 s of speech + 0.05 s
    (arm,) = [a for a in actions if isinstance(a, Arm)]
    assert (arm.timer, arm.delay) == ("playback:t1", pytest.approx(0.15))
    call.feed(TimerFired("playback:t1"))
    assert call.ended == [("t1", "timeout")] and not call.state.speaking


def test_foreign_and_malformed_marks_are_ignored():
    call = Playing()
    call.sent("t1", 0, "Hi.", final=True)
    for name in ["", "nonsense", "other:0", "t1:x", ":3"]:
        assert call.feed(Playback(call_id="c", mark=name)) == []
    assert call.state.speaking
