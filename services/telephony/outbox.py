"""One writer per socket: every outgoing message goes through it, control before audio.

A long burst of agent audio is queued frame by frame, so a `clear` waits at most for the one
frame being written, never behind the burst.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger("ringline.telephony.outbox")

Send = Callable[[str], Awaitable[None]]


@dataclass(slots=True)
class _Queued:
    """One queued message (`turn_id` is empty for control)."""

    text: str
    turn_id: str
    on_sent: Callable[[], None] | None = None


class Outbox:
    def __init__(self, send: Send) -> None:
        self._send = send
        self._control: deque[_Queued] = deque()
        self._audio: deque[_Queued] = deque()
        self._wake = asyncio.Event()
        self._closed = False
        self.failed = False
        self.sent = 0

    def control(self, text: str, on_sent: Callable[[], None] | None = None) -> None:
        """Queue a control message (`clear`) ahead of all audio; `on_sent` runs right after it is written."""
        if not self._closed:
            self._control.append(_Queued(text, "", on_sent))
            self._wake.set()

    def audio(self, text: str, turn_id: str, on_sent: Callable[[], None] | None = None) -> None:
        """Queue a media or mark message of `turn_id`; `on_sent` runs right after it is written."""
        if not self._closed:
            self._audio.append(_Queued(text, turn_id, on_sent))
            self._wake.set()

    def drop_turn(self, turn_id: str | None) -> int:
        """Forget queued audio of `turn_id` (all audio when None); returns how many messages."""
        before = len(self._audio)
        if turn_id is None:
            self._audio.clear()
        else:
            self._audio = deque(item for item in self._audio if item.turn_id != turn_id)
        return before - len(self._audio)

    @property
    def pending(self) -> int:
        return len(self._control) + len(self._audio)

    def close(self) -> None:
        self._closed = True
        self._control.clear()
        self._audio.clear()
        self._wake.set()

    async def run(self) -> None:
        """Write queued messages until closed or the socket fails."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while not self._closed and (self._control or self._audio):
                item = self._control.popleft() if self._control else self._audio.popleft()
                text, on_sent = item.text, item.on_sent
                try:
                    await self._send(text)
                except Exception as exc:  # the socket went away; the reader sees the disconnect
                    log.debug("socket write failed: %r", exc)
                    self.failed = True
                    self.close()
                    return
                self.sent += 1
                if on_sent is not None:
                    try:
                        on_sent()
                    except Exception:
                        log.exception("after-send callback failed")
                await asyncio.sleep(0)  # let a waiting control handler queue its `clear`
