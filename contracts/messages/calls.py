"""Call lifecycle: a call starts on the edge and ends there (or because the agent hung up)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import CallMessage, now


class CallStart(CallMessage):
    type: Literal["call.start"] = "call.start"
    agent_id: str = "default"
    caller: str = ""
    callee: str = ""
    direction: Literal["inbound", "outbound"] = "inbound"
    stream_sid: str = ""
    account_sid: str = ""
    custom: dict[str, str] = Field(default_factory=dict)
    started_at: float = Field(default_factory=now)


class CallEnd(CallMessage):
    type: Literal["call.end"] = "call.end"
    reason: str = "caller hung up"
    ended_at: float = Field(default_factory=now)
