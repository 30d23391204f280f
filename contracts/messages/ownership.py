"""Who serves a call: the live-call registry entry, a stage's lease on a call, its checkpoint.

These live in JetStream key-value buckets, not on subjects, but they are bus messages all the
same: typed, versioned, msgpack. See `contracts.runtime.leases` for the buckets.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from .base import Message, now
from .calls import CallStart


class LiveCall(Message):
    """The registry's entry for a call: written by the edge at `start`, renewed while its stream
    lives, marked `ended` when the call is over (so a memory replica can still close the record)."""

    type: Literal["call.live"] = "call.live"
    call: CallStart
    headers: dict[str, str] = Field(default_factory=dict)  # the call's trace context
    ended: bool = False
    end_reason: str = ""
    closed_to: list[str] = Field(default_factory=list)  # stages that must not claim it (a message is taken)
    updated_at: float = Field(default_factory=now)

    @property
    def call_id(self) -> str:
        return self.call.call_id


class Lease(Message):
    """One stage replica's claim on one call. It lapses unless its owner renews it."""

    type: Literal["lease"] = "lease"
    call_id: str
    stage: str
    owner: str  # replica id: pod name, or host:pid locally
    claimed_at: float = Field(default_factory=now)
    renewed_at: float = Field(default_factory=now)
    takeover: bool = False  # claimed after another replica of the stage had served the call


class Checkpoint(Message):
    """What a stage needs to carry a call on after its owner is gone, written as the call goes."""

    type: Literal["checkpoint"] = "checkpoint"
    call_id: str
    stage: str
    owner: str
    at: float = Field(default_factory=now)
    state: dict[str, Any] = Field(default_factory=dict)
