"""Backchannels told by the shape of the caller's speech, as decisions: (state, events) -> controls.

A burst shorter than the pause threshold never reaches the edge; a longer one that goes quiet
soon enough resumes the agent at once, and its words can still make it an interruption; long
speech (a real barge-in) still pauses, then interrupts. No bus, no clocks: timers are fed as
the events they become.
"""

from __future__ import annotations

import pytest

from ringline.contracts.events import TURN_RESUMED
from ringline.contracts.messages import Playback, SpeechEvent, Transcript, make_mark
from ringline.services.brain import actions as a
from ringline.services.brain.decide import decide
from ringline.services.brain.events import ChunkOut, TimerFired, Words
from ringline.services.brain.rules import Rules
from ringline.services.brain.state import TurnState
from ringline.services.brain.transition import apply

pytestmark = pytest.mark.unit

RULES = Rules(barge_in_min_ms=450, barge_in_confirm_ms=1000, barge_in_collision_ms=400, hold_resume_s=1.5,
              backchannel_max_ms=800, backchannel_quiet_ms=150)


class Call:
    def __init__(self, rules: Rules = RULES) -> None:
        self.state = TurnState(stage="talking", greeted=True)
        self.rules = rules
        self.now = 1000.0

    def feed(self, *events: object) -> list[object]:
        out: list[object] = []
        for event in events:
            self.now += 0.05
            actions = decide(self.state, event, self.rules, self.now)
            for action in actions:
                apply(self.state, action)
            out += actions
        return out

    def speaking(self) -> None:
        """The agent is well into a long answer: its first sentence was heard."""
        for seq, text in enumerate(["It is a long story.", "It began in May.", "Then came June."]):
            self.feed(ChunkOut("t1", seq, text, seq == 2, "answer"))
        self.feed(Playback(call_id="c", mark=make_mark("t1", 0), turn_id="t1"))

    def burst(self, voiced_ms: float, uid: str = "b1", stop: bool = False) -> list[object]:
        """Voice activity as the STT sends it: started, continuing every 50 ms of voiced audio."""
        events: list[object] = [speech("started", min(60, voiced_ms), uid)]
        events += [speech("continuing", ms, uid) for ms in range(100, int(voiced_ms) + 1, 50)]
        if stop:
            events.append(speech("stopped", voiced_ms, uid))
        return self.feed(*events)


def speech(kind: str, voiced_ms: float, uid: str, at: float = 0.0) -> SpeechEvent:
    """`at`: the end of the voiced audio so far on the STT's clock (0: now)."""
    event = SpeechEvent(call_id="c", utterance_id=uid, kind=kind, voiced_ms=voiced_ms, started_at=999.0)
    return event.model_copy(update={"at": at}) if at else event


def words(text: str, uid: str = "b1", final: bool = True) -> Words:
    return Words(Transcript(call_id="c", utterance_id=uid, text=text, is_final=final, end_of_turn=final,
                              speech_started_at=999.0, speech_ended_at=1000.0, emitted_at=1000.5))


def controls(actions: list[object]) -> list[str]:
    """The controls the edge gets: what decides whether the caller hears a stop."""
    return [type(x).__name__.lower() for x in actions if isinstance(x, a.Pause | a.Resume | a.Interrupt)]


def armed(actions: list[object]) -> dict[str, float]:
    return {x.timer: x.delay for x in actions if isinstance(x, a.Arm)}


@pytest.mark.parametrize(("voiced_ms", "said"), [(200, "Right."), (280, "Uh-huh."), (400, "Okay."),
                                                 (420, "(coughs)")])
def test_a_backchannel_under_the_pause_threshold_never_reaches_the_edge(voiced_ms: float, said: str):
    call = Call()
    call.speaking()
    out = call.burst(voiced_ms, stop=True)
    out += call.feed(words(said, final=False), words(said))
    assert controls(out) == [], "no pause, no clear: the caller hears the agent go on"
    assert not any(isinstance(x, a.Answer) for x in out), "and it starts no turn"
    assert call.state.phase == "speaking"


def test_a_longer_burst_pauses_and_goes_on_the_moment_it_goes_quiet():
    call = Call()
    call.speaking()
    out = call.burst(700)
    assert controls(out) == ["pause"]
    assert armed(out)["burst-over"] == 0.15, "each 50 ms of voice restarts the wait for its end"
    resumed = call.feed(TimerFired("burst-over"))  # 150 ms without more voice: it was a burst
    assert controls(resumed) == ["resume"]
    (report,) = [x for x in resumed if isinstance(x, a.Report) and x.name == TURN_RESUMED]
    assert report.data["why"] == "short burst"
    later = call.feed(speech("stopped", 700, "b1"), words("Mm-hmm.", final=False), words("Mm-hmm."))
    assert controls(later) == [] and not any(isinstance(x, a.Answer) for x in later)
    assert call.state.phase == "speaking"


def test_the_end_of_a_short_burst_resumes_without_waiting_for_its_words():
    call = Call()
    call.speaking()
    out = call.burst(600, stop=True)
    assert controls(out) == ["pause", "resume"]


@pytest.mark.parametrize("said", ["Stop.", "No, wait."])
def test_words_that_come_after_the_agent_went_on_can_still_stop_it(said: str):
    call = Call()
    call.speaking()
    call.burst(500)
    assert controls(call.feed(TimerFired("burst-over"))) == ["resume"]
    out = call.feed(words(said, final=False))
    assert controls(out) == ["interrupt"]
    out = call.feed(speech("stopped", 500, "b1"), words(said))
    assert [x.words.transcript.text for x in out if isinstance(x, a.Answer)] == [said]


def test_a_lone_short_word_is_stopped_by_its_words():
    """"Stop." under the pause threshold: nothing from the voice alone, the interim interrupts."""
    call = Call()
    call.speaking()
    assert controls(call.burst(300, stop=True)) == []
    assert controls(call.feed(words("Stop.", final=False))) == ["interrupt"]


def test_a_real_interruption_still_pauses_then_interrupts():
    call = Call()
    call.speaking()
    out = call.burst(450)
    assert controls(out) == ["pause"]
    out = call.burst(850)  # it goes on past any backchannel: no quick resume any more
    clock = [x for x in out if isinstance(x, a.Arm | a.Disarm) and x.timer == "burst-over"]
    assert isinstance(clock[-1], a.Disarm)
    assert controls(call.feed(TimerFired("burst-over"))) == [], "a stale timer decides nothing"
    assert controls(call.burst(1000)) == ["interrupt"]
    assert call.state.owed


def test_a_caller_who_starts_as_the_answer_begins_waits_for_their_words():
    """A collision pause is no backchannel: that caller was mid-sentence, its end does not resume."""
    call = Call()
    for seq, text in enumerate(["Sure.", "Tuesday works."]):
        call.feed(ChunkOut("t1", seq, text, seq == 1, "answer"))  # out, none of it played yet
    out = call.burst(300, stop=True)
    assert controls(out) == ["pause"] and "burst-over" not in armed(out)
    assert controls(call.feed(TimerFired("burst-over"))) == []
    assert call.state.phase == "paused"


def test_without_a_backchannel_limit_the_words_decide_as_before():
    call = Call(Rules(barge_in_min_ms=250, barge_in_confirm_ms=600, backchannel_max_ms=0))
    call.speaking()
    out = call.burst(400, stop=True)
    assert controls(out) == ["pause"] and armed(out)["resume-agent"] == 1.5
    assert controls(call.feed(words("Okay.", final=False))) == ["resume"]


def test_why_the_agent_paused_is_checkpointed():
    call = Call()
    call.speaking()
    call.burst(500)
    restored = TurnState.from_dict(call.state.to_dict())
    assert restored.pause_why == "talk-over" and restored.phase == "paused"
    call.state = restored
    assert controls(call.feed(TimerFired("burst-over"))) == ["resume"]


def test_talk_with_a_gap_between_words_pauses_at_once_and_waits_for_its_words():
    """"Sorry, [250 ms] wait": a second burst is talk, not a murmur, well before 450 ms of voice."""
    call = Call()
    call.speaking()
    first = [speech("started", 60, "w1", at=2000.06)] + [
        speech("continuing", ms, "w1", at=2000.0 + ms / 1000) for ms in (100, 150, 200, 250, 300)]
    assert controls(call.feed(*first)) == []
    again = call.feed(speech("continuing", 350, "w1", at=2000.6))  # 50 ms more voice after 250 ms of none
    assert controls(again) == ["pause"]
    assert controls(call.feed(TimerFired("burst-over"))) == [], "no quick resume for talk"
    assert controls(call.feed(words("Sorry, wait.", "w1", final=False))) == ["interrupt"]


@pytest.mark.parametrize(("said", "expected"), [
    ("And then.", []), ("In a month.", []), ("I'm fine.", []),  # Whisper's guesses at a quick "uh-huh"
    ("Stop.", ["interrupt"]), ("What?", ["interrupt"]), ("No, no.", ["interrupt"]),
])
def test_words_a_short_burst_could_not_hold_are_a_murmur(said: str, expected: list[str]):
    call = Call()
    call.speaking()
    call.burst(400, stop=True)
    out = call.feed(words(said, final=False), words(said))
    assert controls(out) == expected
    assert any(isinstance(x, a.Answer) for x in out) == bool(expected)


def test_a_longer_utterance_is_no_murmur_whatever_its_words():
    call = Call()
    call.speaking()
    call.burst(1000)  # paused, then interrupted on its length
    out = call.feed(speech("stopped", 1000, "b1"), words("And then the second one."))
    assert [x.words.transcript.text for x in out if isinstance(x, a.Answer)] == ["And then the second one."]


def test_a_murmurs_words_that_come_after_the_caller_spoke_again_are_judged_by_their_own_span():
    call = Call()
    call.speaking()
    call.burst(180, "b1", stop=True)
    call.burst(150, "b2")  # the next murmur began before the first one's transcript came
    late = Words(Transcript(call_id="c", utterance_id="b1", text="In a minute.", speech_started_at=999.0,
                            speech_ended_at=999.2, emitted_at=1001.0))
    out = call.feed(late)
    assert controls(out) == [] and not any(isinstance(x, a.Answer) for x in out)
