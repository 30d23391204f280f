"""Control travels on its own subject and is acted on at once, never queued behind audio."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import CallMessage, now

ControlAction = Literal["interrupt", "hangup", "ended", "dtmf", "transfer"]


class Control(CallMessage):
    type: Literal["control"] = "control"
    action: ControlAction
    turn_id: str = ""
    digit: str = ""
    reason: str = ""
    at: float = Field(default_factory=now)
