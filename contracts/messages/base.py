"""Base class for every message on the bus: a type tag and a schema version."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field


def now() -> float:
    """Wall-clock seconds; every timestamp on the bus uses this clock."""
    return time.time()


class Message(BaseModel):
    """A versioned bus message. Subclasses pin `type` with a Literal default."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str
    v: int = 1


class CallMessage(Message):
    """A message that belongs to one call."""

    call_id: str = Field(min_length=1, max_length=128)
