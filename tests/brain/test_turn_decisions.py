"""The brain's turn-taking decisions as tables: (state, events) -> what goes out on the call.

No bus, no clocks: `decide` is fed events one by one and its actions are applied to the state,
as the session does. `heard` reads the actions as the caller and the phone side meet them:
controls sent to the edge, lines said, replies started, the call hung up.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from ringline.contracts.events import EDGE_TAKEOVER, STAGE_TAKEOVER
from ringline.contracts.messages import CallEvent, Control, Playback, SpeechEvent, Transcript, make_mark
from ringline.services.brain import actions as a
from ringline.services.brain.decide import decide
from ringline.services.brain.events import ChunkOut, GoodbyeSaid, Restored, TimerFired, Words
from ringline.services.brain.rules import Rules
from ringline.services.brain.state import TurnState
from ringline.services.brain.transition import apply

pytestmark = pytest.mark.unit

RULES = Rules(barge_in_min_ms=300, barge_in_confirm_ms=600, barge_in_collision_ms=300, hold_resume_s=1.5,
              silence_first_s=8.0, silence_again_s=6.0, reprompt_line="Are you still there?",
              silence_goodbye_line="I'll hang up now.", goodbye_line="Thanks for calling. Goodbye!",
              dtmf_replies={"0": "Our office is open nine to five."})


class Call:
    def __init__(self, rules: Rules = RULES) -> None:
        self.state = TurnState(stage="talking", greeted=True)
        self.rules = rules
        self.now = 1000.0

    def feed(self, *events: object, after: float = 0.0) -> list[object]:
        out: list[object] = []
        for event in events:
            self.now += after
            actions = decide(self.state, event, self.rules, self.now)
            for action in actions:
                apply(self.state, action)
            out += actions
        return out

    def agent_says(self, turn_id: str, *texts: str, kind: str = "answer", heard: int = -1) -> None:
        """The agent published these chunks (the last final); the caller heard up to `heard`."""
        for seq, text in enumerate(texts):
            self.feed(ChunkOut(turn_id, seq, text, seq == len(texts) - 1, kind))
        for seq in range(heard + 1):
            self.feed(mark(turn_id, seq))

    def thinking(self, turn_id: str) -> None:
        """An LLM reply is being generated for the caller's words, nothing of it out yet."""
        self.feed(words("What time is it?", "u0"))
        self.state.agent.turn_id = turn_id  # the voice reports the id of the turn it started


def speech(kind: str, voiced_ms: float, uid: str = "u1") -> SpeechEvent:
    return SpeechEvent(call_id="c", utterance_id=uid, kind=kind, voiced_ms=voiced_ms, started_at=999.0)


def words(text: str, uid: str = "u1", final: bool = True) -> Words:
    return Words(Transcript(call_id="c", utterance_id=uid, text=text, is_final=final, end_of_turn=final,
                              speech_started_at=999.0, speech_ended_at=1000.0, emitted_at=1000.5))


def mark(turn_id: str, seq: int, cleared: bool = False) -> Playback:
    return Playback(call_id="c", mark=make_mark(turn_id, seq), turn_id=turn_id, cleared=cleared)


def heard(actions: list[object]) -> list[tuple[str, ...]]:
    """What goes out: controls to the edge, lines and replies the caller will hear, the hang-up."""
    out: list[tuple[str, ...]] = []
    for action in actions:
        match action:
            case a.Pause(turn_ids=ids) | a.Resume(turn_ids=ids) | a.Interrupt(turn_ids=ids):
                out += [(type(action).__name__.lower(), tid) for tid in ids]
            case a.Say(text=text):
                out.append(("say", text))
            case a.SayGoodbye(text=text):
                out.append(("goodbye", text))
            case a.Answer(words=w):
                out.append(("answer", w.transcript.text))
            case a.AnswerDigit(digit=digit):
                out.append(("answer", f"pressed {digit}"))
            case a.AnswerAgain():
                out.append(("answer", "again"))
            case a.LetGo(turn_id=tid):
                out.append(("let go", tid))
            case a.HangUp(reason=reason, goodbye=how):
                out.append(("hangup", reason, how))
    return out


def armed(actions: list[object]) -> dict[str, float]:
    return {x.timer: x.delay for x in actions if isinstance(x, a.Arm)}


def events(actions: list[object]) -> list[str]:
    return [x.name for x in actions if isinstance(x, a.Report)]


# -- the caller talks over the agent --------------------------------------------------------

@pytest.mark.parametrize(("voice", "expected"), [
    ([("started", 100)], []),  # too short to tell: the agent goes on
    ([("started", 100), ("continuing", 350)], [("pause", "t1")]),  # the caller stops hearing it
    ([("started", 100), ("continuing", 700)], [("interrupt", "t1")]),  # long speech: cut off
    ([("started", 100), ("continuing", 350), ("continuing", 700)], [("pause", "t1"), ("interrupt", "t1")]),
    ([("started", 350), ("stopped", 350)], [("pause", "t1")]),  # the end of the speech decides nothing yet
])
def test_voice_activity_over_the_agent(voice: list[tuple[str, float]], expected: list[tuple[str, ...]]):
    call = Call()
    call.agent_says("t1", "It is a long story.", "It began in May.", heard=0)
    out = call.feed(*(speech(kind, ms) for kind, ms in voice))
    assert heard(out) == expected


@pytest.mark.parametrize(("said", "expected"), [
    ("Uh-huh.", [("resume", "t1")]),  # a backchannel: the agent plays on where it stopped
    ("", [("resume", "t1")]),  # a cough the STT made nothing of
    ("Wait, what about June?", [("interrupt", "t1"), ("answer", "Wait, what about June?")]),
])
def test_the_words_after_a_pause_decide(said: str, expected: list[tuple[str, ...]]):
    call = Call()
    call.agent_says("t1", "It is a long story.", "It began in May.", heard=0)
    call.feed(speech("started", 100), speech("continuing", 350), speech("stopped", 400))
    assert call.state.phase == "paused"
    out = call.feed(words(said))
    assert heard(out) == expected
    assert call.state.phase in ("speaking", "thinking")


def test_a_pause_nobody_decides_resumes_by_itself_and_the_utterance_must_grow_again():
    call = Call()
    call.agent_says("t1", "It is a long story.", "It began in May.", heard=0)
    stopped = call.feed(speech("started", 100), speech("continuing", 350), speech("stopped", 400))
    assert armed(stopped)["resume-agent"] == 1.5  # no words within hold_resume_s: go on
    assert heard(call.feed(TimerFired("resume-agent"))) == [("resume", "t1")]
    assert events(call.feed(words("Mm-hmm.", final=False))) == []
    call.feed(speech("started", 100, "u2"), speech("continuing", 350, "u2"))
    assert call.state.phase == "paused"  # a new utterance: 300 ms pauses again


def test_an_answer_about_to_play_yields_to_a_caller_who_starts_at_the_same_time():
    call = Call()
    call.agent_says("t1", "Sure.", "Tuesday works.")  # out, none of it played yet
    assert heard(call.feed(speech("started", 20))) == [("pause", "t1")]


def test_interrupting_reports_what_the_caller_heard():
    call = Call()
    call.agent_says("t1", "One.", "Two.", "Three.", heard=0)
    out = call.feed(words("Stop, stop.", final=False))
    assert heard(out) == [("interrupt", "t1")]
    (barge,) = [x for x in out if isinstance(x, a.Report)]
    assert barge.data["heard_text"] == "One." and barge.data["chunks_heard"] == 1 and barge.data["chunks_sent"] == 3
    assert call.state.owed  # the caller's next words get an answer, even a short one


# -- holding a reply the caller talks into ------------------------------------------------

@pytest.mark.parametrize(("final", "expected"), [
    ("Um.", [("let go", "r1")]),  # only an "um": the held reply goes out after all
    ("for Tuesday, please.", [("answer", "for Tuesday, please.")]),  # their words replace it
])
def test_a_reply_the_caller_talks_into_is_held(final: str, expected: list[tuple[str, ...]]):
    call = Call()
    call.thinking("r1")
    call.feed(speech("started", 80, "u2"))
    assert call.state.agent.held_turn_id == "r1"
    assert heard(call.feed(words(final, "u2"))) == expected


def test_a_held_reply_goes_out_when_no_words_come():
    call = Call()
    call.thinking("r1")
    out = call.feed(speech("started", 80, "u2"), speech("stopped", 120, "u2"))
    assert armed(out)["resume-reply"] == 1.5
    assert heard(call.feed(TimerFired("resume-reply"))) == [("let go", "r1")]


# -- what starts a turn ---------------------------------------------------------------------

@pytest.mark.parametrize(("said", "expected"), [
    ("What are your hours?", [("answer", "What are your hours?")]),
    ("Okay, bye!", [("goodbye", "Thanks for calling. Goodbye!")]),
    ("", []),
])
def test_the_callers_final_words(said: str, expected: list[tuple[str, ...]]):
    assert heard(Call().feed(words(said))) == expected


def test_a_backchannel_while_the_agent_talks_is_no_turn_but_an_answer_to_its_question_is():
    call = Call()
    call.agent_says("t1", "It began in May.", heard=-1)
    assert heard(call.feed(words("Okay."))) == []
    call = Call()
    call.agent_says("t1", "Shall I book it?", heard=0)
    assert heard(call.feed(words("Okay.", "u2"), after=3.0)) == [("answer", "Okay.")]


@pytest.mark.parametrize(("digit", "expected"), [
    ("0", [("say", "Our office is open nine to five.")]),
    ("5", [("answer", "pressed 5")]),
    ("x", []),
])
def test_a_key_press(digit: str, expected: list[tuple[str, ...]]):
    out = Call().feed(Control(call_id="c", action="dtmf", digit=digit))
    assert heard(out) == expected


# -- silence and the end of the call --------------------------------------------------------

def test_silence_gets_one_reprompt_then_a_goodbye_then_the_call_is_hung_up():
    call = Call()
    call.agent_says("t1", "Anything else?")
    assert armed(call.feed(mark("t1", 0))) == {"silence": 8.0}
    assert heard(call.feed(TimerFired("silence"))) == [("say", "Are you still there?")]
    call.agent_says("t2", "Are you still there?", kind="reprompt", heard=0)
    assert call.state.silence_count == 1
    assert heard(call.feed(TimerFired("silence"))) == [("goodbye", "I'll hang up now.")]
    call.agent_says("t3", "I'll hang up now.", kind="goodbye")
    out = call.feed(GoodbyeSaid("t3", "I'll hang up now.", "the caller was silent"))
    assert heard(out) == [] and call.state.phase == "ending"
    assert heard(call.feed(mark("t3", 0))) == [("hangup", "the caller was silent", "heard")]


def test_a_caller_who_speaks_stops_the_silence_clock():
    call = Call()
    call.agent_says("t1", "Anything else?", heard=0)
    out = call.feed(speech("started", 100))
    assert a.Disarm("silence") in out
    assert heard(call.feed(TimerFired("silence"))) == []  # the caller is talking: not silence


def test_a_goodbye_whose_mark_never_comes_back_hangs_up_after_its_length():
    call = Call()
    out = call.feed(GoodbyeSaid("t1", "Bye.", "the caller said goodbye"))
    assert heard(out) == [("hangup", "the caller said goodbye", "timeout")]  # nothing of it went out
    call = Call()
    call.agent_says("t1", "Bye.", kind="goodbye")
    out = call.feed(GoodbyeSaid("t1", "Bye.", "the caller said goodbye"))
    assert armed(out)["hangup"] == pytest.approx(4 / 14 + 5 + 1)
    assert heard(call.feed(TimerFired("hangup"), after=7.0)) == [("hangup", "the caller said goodbye", "timeout")]


def test_nothing_interrupts_the_goodbye_and_nothing_follows_the_end():
    call = Call()
    assert heard(call.feed(TimerFired("time-limit"))) == [("goodbye", "Goodbye!")]  # the call's time is up
    call.agent_says("t1", "Goodbye!", kind="goodbye")
    assert heard(call.feed(speech("started", 100), speech("continuing", 900), words("Wait!"))) == []
    call.feed(Control(call_id="c", action="hangup"))
    assert call.state.phase == "ended"
    assert call.feed(speech("started", 100, "u9"), words("Hello?", "u9")) == []


# -- the decisions are pure, the state is plain data ----------------------------------------

def test_decide_leaves_the_state_as_it_was():
    call = Call()
    call.agent_says("t1", "One.", "Two.", heard=0)
    before = json.dumps(call.state.to_dict(), sort_keys=True)
    for event in (speech("started", 700), words("Stop."), TimerFired("silence"), mark("t1", 1)):
        decide(call.state, event, RULES, 1001.0)
    assert json.dumps(call.state.to_dict(), sort_keys=True) == before


def test_the_state_round_trips_through_json():
    call = Call()
    call.agent_says("t1", "One.", "Two.", heard=0)
    call.feed(speech("started", 100), speech("continuing", 350))
    data: dict[str, Any] = json.loads(json.dumps(call.state.to_dict()))
    again = TurnState.from_dict(data)
    assert again.to_dict() == call.state.to_dict()
    assert again.phase == "paused" and again.heard_text("t1") == "One." and again.turns["t1"].final_seq == 1


@pytest.mark.parametrize(("phase_of", "expected"), [
    (lambda c: None, "listening"),
    (lambda c: c.thinking("r1"), "thinking"),
    (lambda c: c.agent_says("t1", "Hi."), "speaking"),
    (lambda c: c.feed(TimerFired("time-limit")), "ending"),
])
def test_named_phases(phase_of: Any, expected: str):
    call = Call()
    phase_of(call)
    assert call.state.phase == expected


# -- a call taken over from a snapshot ------------------------------------------------------

def test_a_takeover_remakes_a_reply_whose_generation_died_and_lets_finished_ones_play():
    call = Call()
    call.thinking("r1")
    call.feed(ChunkOut("r1", 0, "Let me see.", False, "answer"), mark("r1", 0))
    taken = Call()
    taken.state = TurnState.from_dict(json.loads(json.dumps(call.state.to_dict())))
    out = taken.feed(Restored())
    assert heard(out) == [("interrupt", "r1"), ("answer", "again")]
    assert taken.state.phase == "thinking"

    call = Call()
    call.thinking("r1")  # nothing of the reply out yet: it is made again
    taken = Call()
    taken.state = TurnState.from_dict(call.state.to_dict())
    assert heard(taken.feed(Restored())) == [("answer", "again")]

    call = Call()
    call.agent_says("t1", "It is nine.", "Anything else?", heard=0)
    taken = Call()
    taken.state = TurnState.from_dict(call.state.to_dict())
    out = taken.feed(Restored())
    assert heard(out) == [] and "playback:t1" in armed(out)  # it plays on; its marks come back


def test_a_call_taken_over_while_ending_still_hangs_up():
    call = Call()
    call.feed(TimerFired("time-limit"))  # the goodbye is decided, the old replica died before saying it
    taken = Call()
    taken.state = TurnState.from_dict(call.state.to_dict())
    assert heard(taken.feed(Restored())) == [("hangup", "the call was ending when it was taken over", "timeout")]
    call.agent_says("t1", "Goodbye!", kind="goodbye")
    call.feed(GoodbyeSaid("t1", "Goodbye!", "the call reached its time limit"))
    taken = Call()
    taken.state = TurnState.from_dict(call.state.to_dict())
    out = taken.feed(Restored())
    assert heard(out) == [] and "hangup" in armed(out)  # once the goodbye was heard, or its time is up
    assert heard(taken.feed(mark("t1", 0))) == [("hangup", "the call reached its time limit", "heard")]


def takeover_of(stage: str) -> CallEvent:
    if stage == "edge":
        return CallEvent(call_id="c", name=EDGE_TAKEOVER, data={"replica": "edge-2"})
    return CallEvent(call_id="c", name=STAGE_TAKEOVER, data={"stage": stage, "replica": f"{stage}-2"})


@pytest.mark.parametrize("stage", ["tts", "edge"])
def test_audio_lost_with_a_tts_or_edge_replica_is_said_again_from_the_first_unheard_chunk(stage: str):
    call = Call()
    call.agent_says("t1", "Paris is the capital.", "It has two million people.", "Anything else?", heard=0)
    out = call.feed(takeover_of(stage))
    assert heard(out) == [("interrupt", "t1"), ("say", "It has two million people. Anything else?")]
    assert call.state.turns["t1"].ended == "interrupted"


def test_a_reply_still_being_made_when_its_audio_was_lost_is_made_again():
    call = Call()
    call.thinking("r1")
    call.feed(ChunkOut("r1", 0, "Let me see.", False, "answer"), mark("r1", 0))
    assert heard(call.feed(takeover_of("tts"))) == [("interrupt", "r1"), ("answer", "again")]


def test_nothing_is_said_again_when_the_caller_had_heard_it_all_or_another_stage_changed_hands():
    call = Call()
    call.agent_says("t1", "It is nine.", heard=0)
    assert heard(call.feed(takeover_of("edge"))) == []
    call.agent_says("t2", "It is ten.", "Bye for now.", heard=0)
    assert heard(call.feed(takeover_of("stt"))) == [] and heard(call.feed(takeover_of("memory"))) == []
