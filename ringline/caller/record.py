"""The call record, fetched from the memory service by NATS request/reply after the call."""

from __future__ import annotations

import asyncio
import logging
import time

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, MalformedMessage, pack, unpack
from ringline.contracts.messages import CallGetReply, CallGetRequest, CallRecord

from ..nats_config import client_options, safe_url

log = logging.getLogger("ringline.caller.record")


async def fetch_record(nats_url: str, call_id: str, timeout: float = 3.0) -> tuple[CallRecord | None, str]:
    """(record, "") or (None, why). Retries until `timeout`: memory writes the record as the call ends."""
    import nats
    from nats.errors import NoRespondersError
    from nats.errors import TimeoutError as NatsTimeout

    deadline = time.monotonic() + timeout
    try:
        nc = await asyncio.wait_for(
            nats.connect(nats_url, **client_options()),
            timeout=max(0.5, min(timeout, 3.0)),
        )
    except Exception as exc:
        return None, f"NATS at {safe_url(nats_url)} unreachable: {exc!r}"
    why = "no reply"
    request = pack(CallGetRequest(call_id=call_id))
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, why
            try:
                msg = await nc.request(subjects.MEMORY_CALLS_GET, request, timeout=min(1.0, max(left, 0.1)),
                                       headers={"content-type": CONTENT_TYPE})
                reply = CallGetReply.model_validate(unpack(msg.data))
            except NoRespondersError:
                why = "no memory service answers on " + subjects.MEMORY_CALLS_GET
            except (TimeoutError, NatsTimeout):
                why = "the memory service did not answer in time"
            except (MalformedMessage, ValueError) as exc:
                return None, f"unreadable reply from the memory service: {exc}"
            else:
                if reply.found and reply.record is not None:
                    if reply.record.ended_at or time.monotonic() + 0.3 > deadline:
                        return reply.record, ""
                    why = "the record is not closed yet"
                else:
                    why = reply.error or f"no record of call {call_id} (yet)"
            await asyncio.sleep(0.25)
    finally:
        try:
            await nc.close()
        except Exception:
            log.debug("closing the NATS connection failed", exc_info=True)
