"""What the agent says: reply text chunks and the timing of each agent turn."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .base import CallMessage


class TurnTiming(BaseModel):
    """Wall-clock timestamps along one turn; each stage fills in its own and passes it on.

    0.0 means "not reached". Mouth-to-ear is `edge_sent_at - speech_ended_at`.
    """

    model_config = ConfigDict(extra="ignore")

    speech_ended_at: float = 0.0
    transcript_at: float = 0.0
    llm_started_at: float = 0.0
    first_token_at: float = 0.0
    first_chunk_at: float = 0.0
    tts_started_at: float = 0.0
    first_audio_at: float = 0.0
    edge_sent_at: float = 0.0
    stt_provider: str = ""
    llm_provider: str = ""
    tts_provider: str = ""

    def stages_ms(self) -> dict[str, float]:
        """Each stage's share of mouth-to-ear, in milliseconds (stages not reached are left out)."""
        points = [
            ("stt", self.speech_ended_at, self.transcript_at),
            ("brain", self.transcript_at, self.first_chunk_at),
            ("tts", self.first_chunk_at, self.first_audio_at),
            ("edge", self.first_audio_at, self.edge_sent_at),
            ("total", self.speech_ended_at, self.edge_sent_at),
        ]
        return {name: round((end - start) * 1000, 1) for name, start, end in points if start and end}


class ReplyChunk(CallMessage):
    """One speakable piece (about a sentence) of an agent turn, in order."""

    type: Literal["reply.chunk"] = "reply.chunk"
    turn_id: str
    seq: int = Field(ge=0)
    text: str = ""
    final: bool = False
    kind: Literal["greeting", "answer", "recovery", "goodbye", "filler", "reprompt"] = "answer"
    in_reply_to: str = ""
    timing: TurnTiming = Field(default_factory=TurnTiming)
