"""Audio in both directions: 8 kHz mu-law, raw bytes on the wire (msgpack bin, never base64)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import CallMessage, now
from .dialogue import TurnTiming

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_BYTES = SAMPLE_RATE * FRAME_MS // 1000  # 160 bytes of mu-law per 20 ms


def make_mark(turn_id: str, seq: int, replay: int = 0) -> str:
    """Name of the mark placed after piece `seq` of agent turn `turn_id`.

    `replay` > 0 names the same mark when the edge sends that audio again after a pause
    (`turn~2:5`), so its echo cannot be mistaken for the echo of the copy the pause cleared.
    """
    return f"{turn_id}~{replay}:{seq}" if replay else f"{turn_id}:{seq}"


def is_replayed_mark(name: str) -> bool:
    """Was this mark's audio sent again after a pause (`make_mark(..., replay=n)`)?"""
    return "~" in name.rpartition(":")[0]


def parse_mark(name: str) -> tuple[str, int]:
    """(turn_id, seq) of a mark made by `make_mark` (any replay); ("", -1) for a foreign mark."""
    turn_id, _, seq = name.rpartition(":")
    turn_id = turn_id.partition("~")[0]
    return (turn_id, int(seq)) if turn_id and seq.isdigit() else ("", -1)


class AudioFrame(CallMessage):
    """One frame of caller audio, as captured by the phone side."""

    type: Literal["audio.frame"] = "audio.frame"
    seq: int = Field(ge=0)
    payload: bytes
    captured_at: float = Field(default_factory=now)


class AgentAudio(CallMessage):
    """A piece of one agent turn's audio. `mark` names the point reached after this piece plays."""

    type: Literal["audio.out"] = "audio.out"
    turn_id: str
    seq: int = Field(ge=0)
    payload: bytes = b""
    mark: str | None = None
    final: bool = False
    timing: TurnTiming = Field(default_factory=TurnTiming)


class Playback(CallMessage):
    """A mark echoed by the phone side: the caller has heard the audio up to it."""

    type: Literal["playback"] = "playback"
    mark: str
    turn_id: str = ""
    heard_at: float = Field(default_factory=now)
    cleared: bool = False  # echoed because the audio was cleared (barge-in), not because it played
