"""Bad messages from the bus are refused with one log line each, never a crash or a traceback.

A body that is not msgpack (plain JSON, say), too big, or that does not validate as the
handler's contract model is dropped by this FastStream middleware with one WARNING naming the
subject and the reason (the pydantic error's field paths and messages, never the input: a bad
message may carry anything). Nothing else changes: other exceptions propagate as before.
"""

from __future__ import annotations

import logging
from types import TracebackType

from faststream import BaseMiddleware
from pydantic import ValidationError

from ..codec import MalformedMessage

log = logging.getLogger("ringline.bus")

MAX_REASON_CHARS = 300


def reason(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = [f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors(include_url=False)]
        text = f"not a valid {exc.title} ({len(parts)} errors): " + "; ".join(parts[:4])
    else:
        text = str(exc)
    return text[:MAX_REASON_CHARS]


class DropBadMessages(BaseMiddleware):
    async def after_processed(self, exc_type: type[BaseException] | None = None,
                              exc_val: BaseException | None = None,
                              exc_tb: TracebackType | None = None) -> bool | None:
        if isinstance(exc_val, MalformedMessage | ValidationError):
            subject = str(getattr(self.msg, "subject", "?"))[:200]
            log.warning("dropped a bad message on %s: %s", subject, reason(exc_val))
            return True
        return False
