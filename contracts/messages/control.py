"""Control travels on its own subject and is acted on at once, never queued behind audio."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import CallMessage, now

ControlAction = Literal["interrupt", "pause", "resume", "hangup", "ended", "dtmf", "transfer"]


class Control(CallMessage):
    """interrupt: stop turn `turn_id` now (empty: every turn) and clear what the caller has not
    heard; pause: the caller may be interrupting: stop playing `turn_id` at once but keep its
    audio; resume: it was only a backchannel: play `turn_id` on from its last heard mark; hangup:
    the agent ends the call; ended: the call is over; dtmf: a key press."""

    type: Literal["control"] = "control"
    action: ControlAction
    turn_id: str = ""
    digit: str = ""
    reason: str = ""
    target: str = ""  # transfer: the number to move the call to
    at: float = Field(default_factory=now)
