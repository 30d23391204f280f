"""Cloud TTS: Cartesia Sonic over its WebSocket, through the `cartesia` SDK.

One connection per process, opened at `start()` and reopened when it dies; one Cartesia
context per agent turn (`turn()`), so the text of a turn is pushed as the LLM streams it and
the voice keeps its prosody across sentences. Audio comes back as raw 8 kHz mu-law, exactly what
the phone wants: no resampling. `CartesiaTurn.cancel()` (barge-in) tells the server to stop and
ends the turn's audio at once.

`CartesiaSynthesizer.stream(text)` (the `Synthesizer` template) runs one context for one text.

Failures are `CartesiaError`s: `CartesiaRateLimited` (429 on connect or on a context),
`CartesiaUnavailable` (5xx, refused, no answer within `connect_timeout_s`),
`CartesiaStalled` (text went out and nothing came back in time), `CartesiaDisconnected`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from .provider import SynthCapabilities, Synthesizer

log = logging.getLogger("ringline.tts.cartesia")

OUTPUT_FORMAT = {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}


class CartesiaError(RuntimeError):
    retryable = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(f"cartesia: {message}")
        self.status = status


class CartesiaRateLimited(CartesiaError):
    pass


class CartesiaUnavailable(CartesiaError):
    pass


class CartesiaAuthError(CartesiaError):
    retryable = False


class CartesiaRequestError(CartesiaError):
    retryable = False


class CartesiaStalled(CartesiaError):
    pass


class CartesiaDisconnected(CartesiaError):
    pass


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

    def __init__(self, options: CartesiaOptions, piece_ms: int = 100) -> None:
        super().__init__(piece_ms)
        self.options = options
        self._client: Any = None
        self._conn: Any = None
        self._suspect: Any = None  # a connection that stalled a turn: replaced before the next
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Build the client and open the connection early (a failure here is retried per turn)."""
        try:
            await self._connection()
        except CartesiaError as exc:
            log.warning("cartesia not reachable at start: %s", exc)

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await _close_quietly(conn)
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    async def turn(self, context_id: str | None = None) -> CartesiaTurn:
        """A context for one agent turn; raises `CartesiaError` when no connection can be had."""
        conn = await self._connection()
        o = self.options
        context_id = context_id or f"turn-{uuid.uuid4().hex[:12]}"
        context = conn.context(
            context_id, model_id=o.model_id, voice={"id": o.voice_id}, output_format=OUTPUT_FORMAT,
            language=o.language, max_buffer_delay_ms=o.max_buffer_delay_ms,
        )
        return CartesiaTurn(context_id, context, _socket(conn), o,
                            on_stall=lambda: setattr(self, "_suspect", conn))

    async def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        turn = await self.turn()
        try:
            await turn.push(text)
            await turn.end()
            async for audio in turn.audio():
                yield audio
        finally:
            await turn.cancel()  # no-op once the turn is done

    async def _connection(self) -> Any:
        async with self._lock:
            if self._conn is not None:
                if self._conn is not self._suspect and not _closed(self._conn):
                    return self._conn
                await _close_quietly(self._conn)  # dead or stalled: stop its reader, start afresh
                self._conn = None
            if self._client is None:
                from cartesia import AsyncCartesia

                o = self.options
                self._client = AsyncCartesia(api_key=o.api_key, base_url=o.base_url,
                                             websocket_base_url=o.websocket_base_url, max_retries=0)
            # A fresh manager each time: the SDK's own reconnect reuses the dead connection.
            manager = self._client.tts.websocket_connect()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(self.options.connect_timeout_s):
                    self._conn = await manager.enter()
            except Exception as exc:
                self._conn = None
                raise _connect_error(exc) from exc
            log.info("cartesia connected in %.0f ms", (time.perf_counter() - started) * 1000)
            return self._conn


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
                        raise _event_error(event)
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


def _connect_error(exc: BaseException) -> CartesiaError:
    from websockets.exceptions import InvalidStatus

    if isinstance(exc, InvalidStatus):
        return _status_error(exc.response.status_code, "connect refused")
    if isinstance(exc, TimeoutError):
        return CartesiaUnavailable("no answer to connect")
    return CartesiaUnavailable(f"cannot connect: {type(exc).__name__}: {exc}")


def _event_error(event: Any) -> CartesiaError:
    return _status_error(event.status_code, f"{event.title or 'error'}: {event.message or ''}".strip())


def _status_error(status: int | None, message: str) -> CartesiaError:
    text = f"{message} (HTTP {status})"
    if status == 429:
        return CartesiaRateLimited(text, status)
    if status in (401, 402, 403):
        return CartesiaAuthError(text, status)
    if status is not None and 400 <= status < 500:
        return CartesiaRequestError(text, status)
    return CartesiaUnavailable(text, status)
