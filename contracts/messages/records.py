"""Durable call records kept by the memory service, and the events that feed them."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .base import CallMessage, now
from .dialogue import TurnTiming


class CallEvent(CallMessage):
    """Something a stage wants on the call record: turn metrics, a fallback, an error."""

    type: Literal["call.event"] = "call.event"
    name: str
    turn_id: str = ""
    at: float = Field(default_factory=now)
    timing: TurnTiming | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class TurnRecord(BaseModel):
    turn_id: str
    speaker: Literal["caller", "agent"]
    text: str
    kind: str = ""
    started_at: float = 0.0
    ended_at: float = 0.0
    in_reply_to: str = ""
    latency_ms: dict[str, float] = Field(default_factory=dict)
    providers: dict[str, str] = Field(default_factory=dict)
    interrupted: bool = False
    heard_text: str = ""  # for an interrupted agent turn: what the caller actually heard
    resumed: int = 0  # times the caller's speech paused this agent turn and it went on (a backchannel)
    usage: list[dict[str, Any]] = Field(default_factory=list)  # contracts.pricing.Usage, one per provider
    cost: dict[str, Any] = Field(default_factory=dict)  # contracts.pricing.Cost.rounded()


class VoicemailRecord(BaseModel):
    """A message the caller left (events `voicemail.started` / `voicemail.message`)."""

    reason: str = ""  # why the call went to voicemail ("busy", "outside business hours", ...)
    started_at: float = 0.0  # `voicemail.started`: the prompt began
    taken_at: float = 0.0  # `voicemail.message` arrived (0: the call ended first)
    text: str = ""  # the transcript of the message
    duration_s: float = 0.0  # the message as the brain timed it
    audio_key: str = ""  # object in the memory service's audio bucket (8 kHz mu-law); "" when none
    audio_s: float = 0.0  # seconds of audio stored


class SummaryRecord(BaseModel):
    """The brain's summary of the call (event `call.summary`, sent after the call ended)."""

    text: str = ""
    facts: Any = None  # whatever the brain extracted: a list of strings or a mapping
    at: float = 0.0


class TransferRecord(BaseModel):
    """The call was handed to a human (event `call.transfer`)."""

    target: str = ""
    outcome: str = ""
    at: float = 0.0


class RecordingRecord(BaseModel):
    """Both sides of the call (agent `record_audio: true`): 8 kHz mu-law, caller left, agent right."""

    audio_key: str = ""
    channels: int = 2
    audio_s: float = 0.0


class ReportDelivery(BaseModel):
    """One call report webhook and how its delivery went."""

    url: str
    status: Literal["pending", "delivered", "lost"] = "pending"
    attempts: int = 0
    last_error: str = ""
    status_code: int = 0  # of the last attempt that got an HTTP answer
    signed: bool = True
    delivered_at: float = 0.0


class CallRecord(BaseModel):
    type: Literal["call.record"] = "call.record"
    v: int = 1
    call_id: str
    agent_id: str = "default"
    caller: str = ""
    callee: str = ""
    direction: str = "inbound"
    started_at: float = 0.0
    ended_at: float = 0.0
    end_reason: str = ""
    trace_id: str = ""  # the call's OpenTelemetry trace (32 hex digits), from the `calls.start` headers
    turns: list[TurnRecord] = Field(default_factory=list)
    events: list[dict[str, Any]] = Field(default_factory=list)
    replicas: dict[str, str] = Field(default_factory=dict)  # stage -> the replica serving it (last known)
    takeovers: int = 0  # times a stage's replica took the call over from another (events `stage.takeover`)
    cost: dict[str, Any] = Field(default_factory=dict)  # the sum of the turns' costs
    voicemail: VoicemailRecord | None = None
    summary: SummaryRecord | None = None
    transfer: TransferRecord | None = None
    recording: RecordingRecord | None = None
    reports: list[ReportDelivery] = Field(default_factory=list)

    def turn(self, turn_id: str) -> TurnRecord | None:
        return next((t for t in self.turns if t.turn_id == turn_id), None)


class CallSummary(BaseModel):
    call_id: str
    agent_id: str
    caller: str
    callee: str = ""
    direction: str = "inbound"
    started_at: float
    ended_at: float
    turns: int
    end_reason: str
    cost: float = 0.0


class SpendRequest(BaseModel):
    agent_id: str
    call_id: str = ""  # the call asking: `SpendReply.active_calls` leaves it out
    day: str = ""  # YYYY-MM-DD (UTC); empty: today


class SpendReply(BaseModel):
    agent_id: str
    day: str
    spent: float = 0.0
    currency: str = "USD"
    active_calls: int | None = None  # the agent's calls in progress besides request.call_id (None: not known)


class CallListRequest(BaseModel):
    """The newest calls first; every filter that is set must match."""

    limit: int = Field(default=20, ge=1, le=1000)
    agent_id: str = ""
    number: str = ""  # a part of the caller's or the callee's number ("555 01" matches +15550123)
    since: float = 0.0  # started at or after (epoch seconds)
    until: float = 0.0  # started before


class CallGetRequest(BaseModel):
    call_id: str


class CallGetReply(BaseModel):
    found: bool
    record: CallRecord | None = None
    error: str = ""
