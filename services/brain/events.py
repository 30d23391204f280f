"""What happens on a call, besides the contract messages that arrive on the bus.

Events come from the bus (the caller's voice activity and words, playback marks, controls,
stage events: the contract messages themselves, a transcript wrapped in `Words` with its trace
context), from the session's clocks (`TimerFired`), from the agent's voice (`ChunkOut`,
`TurnDone`, `GoodbyeSaid`) and from a takeover (`Restored`). `decide` says what each means.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ringline.contracts.messages import Transcript


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
