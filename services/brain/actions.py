"""What the brain does about what happens on a call (actions), as plain data.

`decide` turns one event (`events`) into a list of actions; the session applies each: first to
the `TurnState` (`transition.apply`, no I/O, the same function `decide` uses on its scratch
copy), then on the bus, the voice and the history (`effects`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .events import Words
from .state import Ending

# -- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewUtterance:
    utterance_id: str
    started_at: float


@dataclass(frozen=True)
class CallerVoice:
    voiced_ms: float
    active: bool
    at: float = 0.0  # the end of the voiced audio so far (the STT's clock)
    gap: bool = False  # the voice came back after a silence inside the utterance


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
    why: str = "talk-over"  # or "collision": the caller spoke as an answer began


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
