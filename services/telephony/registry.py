"""The calls one edge replica serves: duplicate-stream checks and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from ringline.contracts.runtime import CallAnnouncer

from .busy_message import LineBook

if TYPE_CHECKING:
    from .busy import BusyLine
    from .stream import CallStream

log = logging.getLogger("ringline.telephony.registry")

CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013


class CallRegistry:
    """The sockets this replica serves, for duplicate-call checks and graceful shutdown."""

    def __init__(self, announcer: CallAnnouncer | None = None) -> None:
        # The live-call registry every stage reads (None: calls.start alone, as in tests of the loop).
        self.announcer = announcer
        self.streams: set[CallStream] = set()
        self.calls: dict[str, CallStream] = {}
        self.draining = False  # SIGTERM: unready, serving its calls until they end or hand over (`drain`)
        self.busy_line: BusyLine | None = None  # the apology when no replica has room (`busy`)
        self.hold_lines: tuple[BusyLine, BusyLine] | None = None  # hold line, apology: a stage is late (`hold`)
        self.message_lines = LineBook()  # agents' voicemail prompts, for a message taken when busy

    async def shutdown(self, timeout: float) -> None:
        streams = list(self.streams)
        for stream in streams:
            stream.request_close(CLOSE_GOING_AWAY, "service shutting down")
        waiters = [asyncio.ensure_future(s.done.wait()) for s in streams]
        if waiters:
            _, late = await asyncio.wait(waiters, timeout=timeout)
            for waiter in late:
                waiter.cancel()
            if late:
                log.warning("%d calls did not end within %.0f s of shutdown", len(late), timeout)
