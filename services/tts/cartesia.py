"""Cloud TTS: Cartesia Sonic over its WebSocket, through the `cartesia` SDK.

One connection per process, opened at `start()` and reopened when it dies or stalls. Audio comes
back as raw 8 kHz mu-law, exactly what the phone wants: no resampling.

`CartesiaSynthesizer.stream(text)` (the `Synthesizer` template, what the service uses) runs one
Cartesia context per text, that is per reply chunk: the session needs to know where each chunk's
audio ends to place its mark, and a context only says `done` at its very end. (The real API can
mark a point inside a context, `flush` -> `flush_done`; the test double cannot yet, so one context
per agent turn with text pushed as the LLM streams it, `turn()` / `CartesiaTurn`, is ready but not
what the service speaks with.) Closing the stream, or cancelling its reader (barge-in), cancels
the context on the server.

`for_call(custom)` gives a call its own voice (`tts_voice`) or model (`tts_model`) on the same
connection. `abandon()` marks the connection as suspect when a caller gave up waiting.

Failures are `CartesiaError`s (see `cartesia_errors`): `CartesiaRateLimited` (429 on connect or
on a context), `CartesiaUnavailable` (5xx, refused, no answer within `connect_timeout_s`),
`CartesiaStalled` (text went out and nothing came back in time), `CartesiaDisconnected`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from .cartesia_errors import (
    CartesiaAuthError,
    CartesiaDisconnected,
    CartesiaError,
    CartesiaRateLimited,
    CartesiaRequestError,
    CartesiaStalled,
    CartesiaUnavailable,
    connect_error,
    event_error,
)
from .provider import SynthCapabilities, Synthesizer

__all__ = [
    "CartesiaAuthError", "CartesiaDisconnected", "CartesiaError", "CartesiaOptions", "CartesiaRateLimited",
    "CartesiaRequestError", "CartesiaStalled", "CartesiaSynthesizer", "CartesiaTurn", "CartesiaUnavailable",
]

log = logging.getLogger("ringline.tts.cartesia")

OUTPUT_FORMAT = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}


@dataclass(frozen=True)
class CartesiaOptions:
    api_key: str
    voice_id: str = "6ccbfb76-1fc6-48f7-b71d-91ac6298247b"  # the SDK's own default voice
    model_id: str = "sonic-3"
    language: str = "en"
    base_url: str | None = None
    websocket_base_url: str | None = None
    """ws(s)://host[:port] instead of wss://api.cartesia.ai (tests, proxies)."""
    max_buffer_delay_ms: int | None = None
    """None: Cartesia starts on each push at once (we push whole sentences)."""
    connect_timeout_s: float = 3.0
    first_audio_timeout_s: float = 3.0
    stall_timeout_s: float = 2.0


class CartesiaSynthesizer(Synthesizer):
    name = "cartesia"
    capabilities = SynthCapabilities(streaming=True, cancel=True)

    def __init__(self, options: CartesiaOptions, piece_ms: int = 100,
                 shared_with: CartesiaSynthesizer | None = None) -> None:
        """`shared_with`: use that synthesizer's connection (another voice on the same account)."""
        super().__init__(piece_ms)
        self.options = options
        self._pool = shared_with._pool if shared_with is not None else _Connection(options)
        if shared_with is not None:
            self.stats = shared_with.stats

    async def start(self) -> None:
        """Build the client and open the connection early (a failure here is retried per turn)."""
        try:
            await self._pool.get()
        except CartesiaError as exc:
            log.warning("cartesia not reachable at start: %s", exc)

    async def aclose(self) -> None:
        await self._pool.aclose()

    def for_call(self, custom: Mapping[str, str]) -> Synthesizer:
        """`tts_voice` / `tts_model` in the call's custom parameters pick another voice or model."""
        voice, model = custom.get("tts_voice", "").strip(), custom.get("tts_model", "").strip()
        if not voice and not model:
            return self
        options = replace(self.options, voice_id=voice or self.options.voice_id,
                          model_id=model or self.options.model_id)
        view = CartesiaSynthesizer(options, shared_with=self)
        view.piece_bytes = self.piece_bytes
        return view

    def abandon(self) -> None:
        """Someone stopped waiting for first audio: the connection may be stuck, use a fresh one."""
        self._pool.suspect = self._pool.conn

    async def turn(self, context_id: str | None = None) -> CartesiaTurn:
        """A context for one agent turn; raises `CartesiaError` when no connection can be had."""
        conn = await self._pool.get()
        o = self.options
        context_id = context_id or f"turn-{uuid.uuid4().hex[:12]}"
        context = conn.context(
            context_id, model_id=o.model_id, voice={"id": o.voice_id}, output_format=OUTPUT_FORMAT,
            language=o.language, max_buffer_delay_ms=o.max_buffer_delay_ms,
        )
        return CartesiaTurn(context_id, context, _socket(conn), o,
                            on_stall=lambda: setattr(self._pool, "suspect", conn))

    async def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        turn = await self.turn()
        try:
            await turn.push(text)
            await turn.end()
            async for audio in turn.audio():
                yield audio
        finally:
            await turn.cancel()  # no-op once the turn is done


class _Connection:
    """The one WebSocket of a process (shared by every voice), reopened when it died or stalled."""

    def __init__(self, options: CartesiaOptions) -> None:
        self.options = options
        self.client: Any = None
        self.conn: Any = None
        self.suspect: Any = None  # a connection that stalled a turn: replaced before the next
        self._lock = asyncio.Lock()

    async def get(self) -> Any:
        async with self._lock:
            if self.conn is not None:
                if self.conn is not self.suspect and not _closed(self.conn):
                    return self.conn
                await _close_quietly(self.conn)  # dead or stalled: stop its reader, start afresh
                self.conn = None
            if self.client is None:
                from cartesia import AsyncCartesia

                o = self.options
                self.client = AsyncCartesia(api_key=o.api_key, base_url=o.base_url,
                                            websocket_base_url=o.websocket_base_url, max_retries=0)
            # A fresh manager each time: the SDK's own reconnect reuses the dead connection.
            manager = self.client.tts.websocket_connect()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.options.connect_timeout_s):
                    self.conn = await manager.enter()
            except Exception as exc:
                self.conn = None
                raise connect_error(exc) from exc
            log.info("cartesia connected in %.0f ms", (time.perf_counter() - started) * 1000)
            return self.conn

    async def aclose(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            await _close_quietly(conn)
        client, self.client = self.client, None
        if client is not None:
            await client.close()


class CartesiaTurn:
    """One Cartesia context: `push` text as it comes, `end`, read `audio()`; `cancel` any time."""

    def __init__(self, context_id: str, context: Any, socket: Any, options: CartesiaOptions,
                 on_stall: Callable[[], None] | None = None) -> None:
        self.context_id = context_id
        self._on_stall = on_stall
        self._context = context
        self._socket = socket
        self._options = options
        self._cancelled = asyncio.Event()
        self.finished = False
        self.ended = False
        self.characters = 0
        self.audio_bytes = 0
        self.first_push_at = 0.0
        self.first_audio_at = 0.0
        self._last_push = self._last_event = self._ended_at = 0.0

    async def __aenter__(self) -> CartesiaTurn:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.cancel()

    @property
    def first_audio_s(self) -> float | None:
        return self.first_audio_at - self.first_push_at if self.first_audio_at else None

    async def push(self, text: str) -> None:
        if not text.strip() or self.finished:
            return
        try:
            await self._context.push(text)
        except Exception as exc:
            raise CartesiaDisconnected(f"push failed: {exc!r}") from exc
        self._last_push = time.monotonic()
        self.first_push_at = self.first_push_at or self._last_push
        self.characters += len(text)

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
        if self._context is not None and not _socket_closed(self._socket):
            try:
                await self._context.cancel()
            except Exception:  # the connection died under us; nothing left to stop
                log.debug("cartesia cancel failed", exc_info=True)

    async def audio(self) -> AsyncIterator[bytes]:
        """Raw 8 kHz mu-law as it arrives, until Cartesia says done (or `cancel`)."""
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
                        self.audio_bytes += len(audio)
                        yield audio
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
        after the last event, or the end of a turn we ended."""
        owed = self.ended or self._last_push > self._last_event
        if not owed:
            return
        since = max(self._last_push, self._last_event, self._ended_at)
        limit = self._options.first_audio_timeout_s if not self.first_audio_at else self._options.stall_timeout_s
        if time.monotonic() - since > limit:
            self.finished = True
            if self._on_stall is not None:
                self._on_stall()
            raise CartesiaStalled(f"nothing for {limit:.1f}s after {'text' if not self.ended else 'the end'} went out")


def _socket(conn: Any) -> Any:
    # The SDK keeps the websockets connection private and exposes no state; we need it to
    # notice a dead connection (its reader task only logs) and to reconnect cleanly.
    return conn._connection


def _socket_closed(socket: Any) -> bool:
    from websockets.protocol import State

    return socket.state in (State.CLOSING, State.CLOSED)


def _closed(conn: Any) -> bool:
    return _socket_closed(_socket(conn))


async def _close_quietly(conn: Any) -> None:
    try:
        async with asyncio.timeout(1.0):
            await conn.close()
    except Exception:  # already gone, or a peer that never answers the close
        _socket(conn).transport.abort()
