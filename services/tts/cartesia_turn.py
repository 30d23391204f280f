"""One Cartesia context on the TTS WebSocket, as a turn: text in as it comes, audio out up to
each mark (`flush_done` of a flushed part, `done` of the context), cancel at any time.

Cartesia joins the text of one context verbatim and keeps the prosody across it; a manual flush
(`flush: true` with an empty transcript) makes it speak what it has and answer `flush_done`
after that audio. Waiting counts as a stall only while Cartesia owes us something.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from .cartesia_errors import CartesiaDisconnected, CartesiaStalled, event_error

log = logging.getLogger("ringline.tts.cartesia")


class CartesiaTurn:
    """One Cartesia context: `push` text as it comes, `flush` to mark where a part's audio ends,
    `end` after the last text; read `audio()` up to the next mark; `cancel` any time."""

    def __init__(self, context_id: str, context: Any, socket: Any, first_audio_timeout_s: float,
                 stall_timeout_s: float, on_stall: Callable[[], None] | None = None) -> None:
        self.context_id = context_id
        self._on_stall = on_stall
        self._context = context
        self._socket = socket
        self.first_audio_timeout_s = first_audio_timeout_s
        """Text went out -> its first audio."""
        self.stall_timeout_s = stall_timeout_s
        """Longest gap once audio flows, or before a mark that is owed."""
        self._cancelled = asyncio.Event()
        self.finished = False
        self.ended = False
        self.characters = 0
        self.audio_bytes = 0
        self.first_push_at = 0.0
        self.first_audio_at = 0.0
        self.flushes = 0
        """Flushes sent; the i-th one's audio ends with `flush_done` (flush_id i)."""
        self.flushes_done = 0
        self._last_push = self._last_event = self._ended_at = 0.0
        self._joined = ""  # the text so far ends like this (Cartesia joins pushes verbatim)
        self._awaiting_audio = False  # text went out since the last audio or mark

    async def __aenter__(self) -> CartesiaTurn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    @property
    def first_audio_s(self) -> float | None:
        return self.first_audio_at - self.first_push_at if self.first_audio_at else None

    async def push(self, text: str) -> None:
        """More text for this context. Cartesia concatenates pushes verbatim, so one that follows
        a word without a space in between gets one."""
        if not text.strip() or self.finished:
            return
        if self._joined and not self._joined[-1].isspace() and not text[0].isspace():
            text = " " + text
        try:
            await self._context.push(text)
        except Exception as exc:
            raise CartesiaDisconnected(f"push failed: {exc!r}") from exc
        self._last_push = time.monotonic()
        self.first_push_at = self.first_push_at or self._last_push
        self.characters += len(text)
        self._joined = text[-1]
        self._awaiting_audio = True

    async def flush(self) -> None:
        """Everything pushed so far is spoken now; `audio()` stops where its audio ends."""
        if self.ended or self.finished:
            return
        try:
            await self._context.push("", flush=True)
        except Exception as exc:
            raise CartesiaDisconnected(f"flush failed: {exc!r}") from exc
        self.flushes += 1

    async def end(self) -> None:
        """No more text in this turn: the audio ends once what was pushed is spoken."""
        if self.ended or self.finished:
            return
        try:
            await self._context.no_more_inputs()
        except Exception as exc:
            raise CartesiaDisconnected(f"ending the context failed: {exc!r}") from exc
        self.ended, self._ended_at = True, time.monotonic()

    async def cancel(self) -> None:
        """Barge-in: stop generation on the server and end `audio()` now. Idempotent."""
        if self.finished:
            return
        self.finished = True
        self._cancelled.set()
        if self._context is not None and not socket_closed(self._socket):
            try:
                await self._context.cancel()
            except Exception:  # the connection died under us; nothing left to stop
                log.debug("cartesia cancel failed", exc_info=True)

    async def audio(self) -> AsyncIterator[bytes]:
        """Raw 8 kHz mu-law as it arrives, up to the next mark: the end of a flushed part
        (`flush_done`; the context goes on) or of the context (`done`), or `cancel`."""
        receiver = self._context.receive()
        closed = asyncio.ensure_future(self._socket.wait_closed())
        cancelled = asyncio.ensure_future(self._cancelled.wait())
        following: asyncio.Future[Any] | None = None
        try:
            while not self.finished:
                following = following or asyncio.ensure_future(anext(receiver))
                await asyncio.wait({following, closed, cancelled}, timeout=0.1,
                                   return_when=asyncio.FIRST_COMPLETED)
                if cancelled.done():
                    return
                if following.done():
                    event, following = following.result(), None  # StopAsyncIteration: ends below
                    self._last_event = time.monotonic()
                    if event.type == "chunk" and event.data:
                        audio = event.audio or b""
                        self.first_audio_at = self.first_audio_at or time.monotonic()
                        self._awaiting_audio = False
                        self.audio_bytes += len(audio)
                        yield audio
                    elif event.type == "flush_done":
                        self.flushes_done += 1
                        self._awaiting_audio = False
                        if self.flushes_done >= self.flushes:
                            return  # this part is spoken; the context stays open
                    elif event.type == "done":
                        self.finished = True
                    elif event.type == "error":
                        self.finished = True
                        raise event_error(event)
                elif closed.done():
                    self.finished = True
                    raise CartesiaDisconnected("connection lost mid-turn")
                else:
                    self._check_stall()
        except StopAsyncIteration:
            self.finished = True
        finally:
            closed.cancel()
            cancelled.cancel()
            if following is not None:
                following.cancel()
                await asyncio.gather(following, return_exceptions=True)
            await receiver.aclose()

    def _check_stall(self) -> None:
        """Waiting is a stall only while Cartesia owes us something: audio for text pushed
        after the last event, the mark of a flush, or the end of a turn we ended."""
        owed = self.ended or self.flushes > self.flushes_done or self._last_push > self._last_event
        if not owed:
            return
        since = max(self._last_push, self._last_event, self._ended_at)
        limit = self.first_audio_timeout_s if self._awaiting_audio else self.stall_timeout_s
        if time.monotonic() - since > limit:
            self.finished = True
            if self._on_stall is not None:
                self._on_stall()
            raise CartesiaStalled(f"nothing for {limit:.1f}s after {'text' if not self.ended else 'the end'} went out")


def socket_closed(socket: Any) -> bool:
    from websockets.protocol import State

    return socket.state in (State.CLOSING, State.CLOSED)
