"""What happens on a call (events) and what the brain does about it (actions), as plain data.

Events come from the bus (the caller's voice activity and words, playback marks, controls,
stage events; those are the contract messages themselves), from the session's timers
(`TimerFired`) and from the agent's voice (`ChunkOut`, `TurnDone`, `GoodbyeSaid`). `decide` turns
one event into a list of actions; the session applies each: first to the `TurnState` (`apply`,
no I/O, the same function `decide` uses on its scratch copy), then on the bus, the voice and
the history (`effects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ringline.contracts.messages import Transcript

from .state import Ending, Hangup, TurnState

# -- events that are not contract messages ---------------------------------------------------


@dataclass(frozen=True)
class Words:
    """A transcript, with the trace context it came with."""

    transcript: Transcript
    parent: Any = None


@dataclass(frozen=True)
class TimerFired:
    name: str  # "silence", "resume-agent", "resume-reply", "hangup", "time-limit", "playback:<turn id>"


@dataclass(frozen=True)
class ChunkOut:
    """The voice is about to publish a reply chunk."""

    turn_id: str
    seq: int
    text: str
    final: bool
    kind: str


@dataclass(frozen=True)
class TurnDone:
    """An LLM turn stopped generating (not cancelled)."""

    turn_id: str
    final_kind: str = ""
    text: str = ""
    end_reason: str = ""
    transfer_to: str = ""
    failed: bool = False


@dataclass(frozen=True)
class GoodbyeSaid:
    turn_id: str
    text: str
    reason: str
    transfer_to: str = ""


@dataclass(frozen=True)
class Restored:
    """A replica took the call over from a snapshot: the clocks start again."""


# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUtterance:
    utterance_id: str
    started_at: float


@dataclass(frozen=True)
class CallerVoice:
    voiced_ms: float
    active: bool


@dataclass(frozen=True)
class Sent:
    """A chunk goes out (recorded before it is published)."""

    turn_id: str
    seq: int
    text: str
    final: bool
    kind: str
    at: float


@dataclass(frozen=True)
class Heard:
    turn_id: str
    seq: int


@dataclass(frozen=True)
class FirstAudio:
    turn_id: str
    at: float


@dataclass(frozen=True)
class Pause:
    """The caller stops hearing these turns: the edge clears the phone and keeps the audio."""

    turn_ids: tuple[str, ...]
    onset: float
    at: float


@dataclass(frozen=True)
class Resume:
    """The paused agent goes on where the caller stopped hearing it (turn_ids may be empty)."""

    turn_ids: tuple[str, ...]
    why: str
    note_voiced: bool = True  # the caller's utterance must grow again before it pauses the agent


@dataclass(frozen=True)
class ClearPause:
    """The pause is over (decided either way); nothing is published."""


@dataclass(frozen=True)
class Interrupt:
    """The interrupt control for these turns: the edge drops their audio, TTS stops."""

    turn_ids: tuple[str, ...]
    trigger: str


@dataclass(frozen=True)
class End:
    """A turn stopped speaking; the history gets it as the caller heard it."""

    turn_id: str
    how: Ending
    at: float


@dataclass(frozen=True)
class Arm:
    timer: str
    delay: float


@dataclass(frozen=True)
class Disarm:
    timer: str


@dataclass(frozen=True)
class Report:
    """A call event for the record (`turn.paused`, `turn.barge_in`, `call.limit`…)."""

    name: str
    turn_id: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HoldReply:
    turn_id: str


@dataclass(frozen=True)
class LetGo:
    turn_id: str


@dataclass(frozen=True)
class DropHold:
    pass


@dataclass(frozen=True)
class CancelTurn:
    pass


@dataclass(frozen=True)
class Guess:
    words: Words


@dataclass(frozen=True)
class DiscardGuess:
    pass


@dataclass(frozen=True)
class Answer:
    """The caller's words go into the history and get an LLM reply (a matching guess speaks)."""

    words: Words
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AnswerDigit:
    digit: str
    at: float


@dataclass(frozen=True)
class AnswerAgain:
    """A fresh reply from the history (the one in flight died with the replica that made it)."""


@dataclass(frozen=True)
class AddCaller:
    text: str
    utterance_id: str = ""
    event: bool = False  # something the caller did, e.g. "pressed 1"


@dataclass(frozen=True)
class Say:
    text: str
    kind: str
    in_reply_to: str = ""


@dataclass(frozen=True)
class SayGoodbye:
    text: str
    reason: str
    in_reply_to: str = ""
    transfer_to: str = ""


@dataclass(frozen=True)
class BeginHangup:
    turn_id: str
    text: str
    reason: str
    transfer_to: str
    at: float


@dataclass(frozen=True)
class HangUp:
    reason: str
    turn_id: str
    transfer_to: str
    goodbye: str  # how the last line ended ("heard", "timeout"…)
    waited_ms: float


@dataclass(frozen=True)
class Forget:
    words: Words


@dataclass(frozen=True)
class CancelFolds:
    pass


@dataclass(frozen=True)
class FoldAfterTurn:
    turn_id: str


@dataclass(frozen=True)
class GreetNow:
    pass


@dataclass(frozen=True)
class SetOwed:
    owed: bool


@dataclass(frozen=True)
class SilenceCount:
    count: int


@dataclass(frozen=True)
class TurnFinished:
    turn_id: str


@dataclass(frozen=True)
class Greeted:
    turn_id: str


@dataclass(frozen=True)
class VoicemailStarted:
    reason: str


@dataclass(frozen=True)
class ToVoicemail:
    """The caller's voice or words while they leave a message."""

    message: Any


@dataclass(frozen=True)
class FinishVoicemail:
    pass


@dataclass(frozen=True)
class Stop:
    action: str  # the control that ended the call ("hangup", "ended")


def apply(state: TurnState, action: object) -> None:
    """What an action changes in the state (no I/O; outcomes the voice reports come separately)."""
    caller, agent = state.caller, state.agent
    match action:
        case NewUtterance(utterance_id=uid, started_at=at):
            caller.utterance_id, caller.started_at, caller.voiced_ms, caller.resumed_ms = uid, at, 0.0, 0.0
        case CallerVoice(voiced_ms=ms, active=active):
            caller.voiced_ms, caller.active = max(caller.voiced_ms, ms), active
        case Sent():
            state.record_chunk(action.turn_id, action.seq, action.text, action.final, action.kind, action.at)
        case Heard(turn_id=tid, seq=seq) if tid in state.turns:
            state.turns[tid].heard_seq = max(state.turns[tid].heard_seq, seq)
        case FirstAudio(turn_id=tid, at=at) if tid in state.turns and not state.turns[tid].first_audio_at:
            state.turns[tid].first_audio_at = at
        case Pause(turn_ids=ids, onset=onset, at=at):
            for tid in ids:
                state.turns[tid].paused = True
            if not state.paused_at:
                state.paused_at, state.pause_onset = at, onset
        case Resume(turn_ids=ids, note_voiced=note):
            state.paused_at = 0.0
            for tid in ids:
                state.turns[tid].paused = False
            if ids and note:
                caller.resumed_ms = caller.voiced_ms
        case ClearPause():
            state.paused_at = 0.0
        case Interrupt():
            state.owed = True
        case End(turn_id=tid, how=how, at=at):
            state.end_turn(tid, how, at)
        case HoldReply(turn_id=tid) if not state.sent_chunks(tid):
            agent.held_turn_id = tid  # as the voice's gate will: only while nothing went out
        case LetGo() | DropHold():
            agent.held_turn_id = ""
        case CancelTurn():
            agent.generating = False
        case DiscardGuess():
            agent.guessing = False
        case Guess():
            agent.guessing = not (state.ended or state.ending or agent.generating)
        case Answer() | AnswerDigit() | AnswerAgain():
            agent.generating, agent.finished, agent.guessing = True, False, False
        case SayGoodbye():
            state.stage = "ending"
            agent.generating = agent.guessing = False
        case BeginHangup(turn_id=tid, text=text, reason=reason, transfer_to=to, at=at):
            state.stage = "ending"
            state.hangup = Hangup(tid, text, reason, to, at)
        case HangUp() if state.hangup is not None:
            state.hangup.done = True
        case Forget():
            agent.generating = agent.guessing = False
        case SetOwed(owed=owed):
            state.owed = owed
        case SilenceCount(count=count):
            state.silence_count = count
        case TurnFinished(turn_id=tid) if tid == agent.turn_id:
            agent.generating, agent.finished = False, True
        case Greeted(turn_id=tid):
            state.greeted, state.greeting_turn_id = True, tid
            if state.stage == "opening":
                state.stage = "talking"
        case VoicemailStarted(reason=reason):
            state.voicemail = reason
        case Stop():
            state.stage = "ended"
            agent.generating = agent.guessing = False
