"""Outbound calls' context: what `POST /calls` was asked, kept until the callee answers.

Twilio requests the voice webhook only once someone (or something) picks up, possibly on
another edge replica, so the context (agent, purpose, numbers) waits in a JetStream key-value
bucket keyed by the outbound id that rides on the webhook URL (`?outbound=<id>`). Entries expire
after `outbound_ttl_s`. The bucket is opened on first use: an edge that never dials never
creates it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time

from nats.js.errors import KeyNotFoundError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ringline.contracts.agents import normalize_number
from ringline.contracts.codec import MalformedMessage, pack, unpack
from ringline.contracts.runtime.leases import LazyBucket

log = logging.getLogger("ringline.telephony.outbound")

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_ID = re.compile(r"^[a-f0-9]{32}$")
MAX_PURPOSE_CHARS = 300  # it travels as a Media Streams <Parameter>, which Twilio keeps short
ANSWERED_BY = ("human", "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other",
               "fax", "unknown")


def e164(number: str) -> str:
    """`+1 (555) 010-0001` -> `+15550100001`; anything that is not an E.164 number is an error."""
    cleaned = normalize_number(number)
    if not _E164.match(cleaned):
        raise ValueError(f"{number!r} is not an E.164 number (a + and the country code, e.g. +15550100001)")
    return cleaned


def new_outbound_id() -> str:
    return secrets.token_hex(16)


def valid_outbound_id(value: str) -> bool:
    return bool(_ID.match(value or ""))


class OutboundRequest(BaseModel):
    """The body of `POST /calls`."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(description="the number to call, E.164")
    agent: str | None = Field(default=None, description="agent id; unset: the default agent")
    purpose: str = Field(min_length=1, max_length=MAX_PURPOSE_CHARS, description="why the agent calls")
    status_callback: str | None = Field(default=None, pattern=r"^https?://",
                                        description="Twilio posts the call's progress here")
    simulate: bool = Field(default=False, description="store the context but place nothing at Twilio "
                           "(`ringline dial --simulate` then plays Twilio and the callee)")

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        return e164(value)

    @field_validator("purpose")
    @classmethod
    def _purpose(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("purpose is empty")
        return value


class OutboundContext(BaseModel):
    """What the voice webhook needs when the outbound call is answered."""

    id: str
    to: str
    caller_id: str
    agent: str
    purpose: str
    created_at: float = Field(default_factory=time.time)
    simulated: bool = False


class OutboundStore:
    def __init__(self, broker: object, bucket: str, ttl_s: float, timeout_s: float = 2.0) -> None:
        self.timeout_s = timeout_s
        self._bucket = LazyBucket(broker, bucket, "Ringline outbound calls waiting to be answered", ttl_s)

    async def put(self, context: OutboundContext) -> None:
        """Store durably; raises on failure (the call is then not placed)."""
        async with asyncio.timeout(self.timeout_s):
            await (await self._bucket.open()).put(context.id, pack(context))

    async def get(self, outbound_id: str) -> OutboundContext | None:
        """The context, or None when it is unknown, expired or unreadable (logged, never raised)."""
        if not valid_outbound_id(outbound_id):
            log.warning("outbound id %r is malformed", outbound_id[:40])
            return None
        try:
            async with asyncio.timeout(self.timeout_s):
                entry = await (await self._bucket.open()).get(outbound_id)
            return OutboundContext.model_validate(unpack(entry.value or b""))
        except KeyNotFoundError:
            log.warning("outbound call %s: no stored context (expired or never placed)", outbound_id)
        except (MalformedMessage, ValidationError) as exc:
            log.warning("outbound call %s: unreadable context: %s", outbound_id, exc)
        except Exception as exc:  # NATS unreachable, a timeout
            log.warning("outbound call %s: reading its context failed: %r", outbound_id, exc)
        return None

    async def delete(self, outbound_id: str) -> None:
        try:
            async with asyncio.timeout(self.timeout_s):
                await (await self._bucket.open()).delete(outbound_id)
        except Exception as exc:  # it expires anyway
            log.debug("outbound call %s: deleting its context failed: %r", outbound_id, exc)
