"""The dashboard's questions to the memory service: NATS request/reply, typed both ways."""

from __future__ import annotations

import logging
from typing import TypeVar

from faststream.nats import NatsBroker
from pydantic import BaseModel, TypeAdapter

from ringline.contracts import subjects
from ringline.contracts.codec import unpack
from ringline.contracts.messages import CallGetReply, CallGetRequest, CallListRequest, CallRecord, CallSummary
from ringline.contracts.messages.voicemail import AudioReply, AudioRequest

log = logging.getLogger("ringline.telephony.memory")

Reply = TypeVar("Reply")
MAX_AUDIO_BYTES = 32 * 1024 * 1024  # a WAV the dashboard will fetch for playback (about 30 minutes)


class MemoryUnavailable(RuntimeError):
    """The memory service did not answer (in time, or at all)."""


class MemoryClient:
    def __init__(self, broker: NatsBroker, timeout_s: float = 5.0) -> None:
        self.broker = broker
        self.timeout_s = timeout_s

    async def _ask(self, subject: str, request: BaseModel, reply: type[Reply] | TypeAdapter[Reply]) -> Reply:
        try:
            message = await self.broker.request(request, subject, timeout=self.timeout_s)
        except Exception as exc:  # no responders, a timeout, the bus away
            raise MemoryUnavailable(f"the memory service did not answer on {subject}: {type(exc).__name__}") \
                from exc
        adapter = reply if isinstance(reply, TypeAdapter) else TypeAdapter(reply)
        return adapter.validate_python(unpack(message.body))

    async def calls(self, request: CallListRequest) -> list[CallSummary]:
        return await self._ask(subjects.MEMORY_CALLS_LIST, request, TypeAdapter(list[CallSummary]))

    async def call(self, call_id: str) -> CallRecord | None:
        reply = await self._ask(subjects.MEMORY_CALLS_GET, CallGetRequest(call_id=call_id), CallGetReply)
        return reply.record if reply.found else None

    async def voicemail_wav(self, call_id: str) -> bytes | None:
        """The voicemail of `call_id` as a WAV file, gathered piece by piece; None when it has none."""
        data = bytearray()
        while True:
            reply = await self._ask(subjects.MEMORY_VOICEMAIL_GET, AudioRequest(call_id=call_id, offset=len(data)),
                                    AudioReply)
            if not reply.found:
                return None
            if not reply.data or reply.total_bytes > MAX_AUDIO_BYTES:
                break
            data += reply.data
            if len(data) >= reply.total_bytes:
                break
        return bytes(data) if data else None
