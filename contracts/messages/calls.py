"""Call lifecycle: a call starts on the edge and ends there (or because the agent hung up)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from .base import CallMessage, now

MAX_CUSTOM_ENTRIES = 64
MAX_CUSTOM_CHARS = 16 * 1024  # all keys and values of `custom` together


class CallStart(CallMessage):
    """Bounded: a start no edge would send (a huge `custom`, a novel for a number) is refused, not
    turned into a call every stage holds state for."""

    type: Literal["call.start"] = "call.start"
    agent_id: str = Field(default="default", max_length=128)
    caller: str = Field(default="", max_length=128)
    callee: str = Field(default="", max_length=128)
    direction: Literal["inbound", "outbound"] = "inbound"
    stream_sid: str = Field(default="", max_length=128)
    account_sid: str = Field(default="", max_length=128)
    custom: dict[str, str] = Field(default_factory=dict)
    started_at: float = Field(default_factory=now)

    @field_validator("custom")
    @classmethod
    def _bounded(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_CUSTOM_ENTRIES:
            raise ValueError(f"{len(value)} custom parameters, at most {MAX_CUSTOM_ENTRIES}")
        size = sum(len(k) + len(v) for k, v in value.items())
        if size > MAX_CUSTOM_CHARS:
            raise ValueError(f"custom parameters of {size} characters, at most {MAX_CUSTOM_CHARS}")
        return value


class CallEnd(CallMessage):
    type: Literal["call.end"] = "call.end"
    reason: str = "caller hung up"
    ended_at: float = Field(default_factory=now)
