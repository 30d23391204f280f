"""Voicemail and call audio, read back from the memory service over request/reply.

`memory.voicemail.list`: VoicemailListRequest -> VoicemailListReply (newest first).
`memory.voicemail.get` (a message's audio) and `memory.recording.get` (both sides of a call):
AudioRequest -> AudioReply, one piece of a WAV file (16-bit PCM, 8 kHz) per request, because a
NATS message is limited to about 1 MB: ask again from `offset + len(data)` until `total_bytes`.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

AUDIO_PIECE_BYTES = 512 * 1024


class VoicemailSummary(BaseModel):
    call_id: str
    agent_id: str = ""
    caller: str = ""
    reason: str = ""
    taken_at: float = 0.0  # when the message was complete (the call's end if it never was)
    duration_s: float = 0.0
    text: str = ""
    has_audio: bool = False


class VoicemailListRequest(BaseModel):
    limit: int = Field(default=20, ge=1, le=1000)
    agent_id: str = ""  # empty: every agent's


class VoicemailListReply(BaseModel):
    messages: list[VoicemailSummary] = Field(default_factory=list)


class AudioRequest(BaseModel):
    call_id: str
    offset: int = Field(default=0, ge=0)  # in the WAV file
    max_bytes: int = Field(default=AUDIO_PIECE_BYTES, ge=1024, le=AUDIO_PIECE_BYTES)


class AudioReply(BaseModel):
    found: bool
    error: str = ""
    total_bytes: int = 0  # of the whole WAV file
    offset: int = 0
    data: bytes = b""  # WAV bytes [offset, offset + len(data))
    sample_rate: int = 8000
    channels: int = 1
