"""What the caller said: voice activity and transcripts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import CallMessage, now


class SpeechEvent(CallMessage):
    """Voice activity, for barge-in: the caller started speaking, is still speaking (sent every
    ~50 ms of voiced audio with the running total), or stopped."""

    type: Literal["speech"] = "speech"
    utterance_id: str
    kind: Literal["started", "continuing", "stopped"]
    at: float = Field(default_factory=now)
    started_at: float = 0.0
    voiced_ms: float = 0.0


class Transcript(CallMessage):
    """Interim or final text of one utterance."""

    type: Literal["transcript"] = "transcript"
    utterance_id: str
    text: str
    is_final: bool = True
    end_of_turn: bool = True
    speech_started_at: float = 0.0
    speech_ended_at: float = 0.0
    emitted_at: float = Field(default_factory=now)
    provider: str = ""
    end_reason: str = ""  # why the turn ended: "silence", "complete", "backstop", "max_length"
