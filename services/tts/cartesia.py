"""Cloud TTS: Cartesia Sonic over its WebSocket, through the `cartesia` SDK.

One connection per process, opened at `start()` and reopened when it dies or stalls. Audio comes
back as raw 8 kHz mu-law, exactly what the phone wants: no resampling.

The service speaks an agent turn through `turn_voice()`: one Cartesia context per turn. Each
reply chunk's text is pushed on it when the session comes to that chunk (`continue: true`, so
Cartesia keeps the prosody across sentences), followed by a manual flush: the chunk's audio ends
with `flush_done`, which is where the session puts the chunk's mark. The final chunk closes the
context (`continue: false`) and its audio ends with `done`. Closing a chunk's stream before its
end (barge-in, a fallback deadline) cancels the context on the server; so does closing the voice
of a turn that is dropped. `stream(text)` (the `Synthesizer` template) is a turn of one chunk.

We send whole sentences, so `max_buffer_delay_ms` is 0: Cartesia's default (3000 ms) may hold a
complete sentence back while it waits for more text.

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
from collections.abc import AsyncGenerator, Mapping
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
)
from .cartesia_turn import CartesiaTurn, socket_closed
from .provider import SynthCapabilities, Synthesizer, TurnVoice

__all__ = [
    "CartesiaAuthError", "CartesiaDisconnected", "CartesiaError", "CartesiaOptions", "CartesiaRateLimited",
    "CartesiaRequestError", "CartesiaStalled", "CartesiaSynthesizer", "CartesiaTurn", "CartesiaTurnVoice",
    "CartesiaUnavailable",
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
    max_buffer_delay_ms: int | None = 0
    """0: Cartesia starts on each push at once (we push whole sentences); None: its default, 3000."""
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
        self._pool: _Connection = shared_with._pool if shared_with is not None else _Connection(options)
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

    def turn_voice(self) -> TurnVoice:
        return CartesiaTurnVoice(self)

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
        return CartesiaTurn(context_id, context, _socket(conn), o.first_audio_timeout_s, o.stall_timeout_s,
                            on_stall=lambda: setattr(self._pool, "suspect", conn))

    async def _stream_impl(self, text: str) -> AsyncGenerator[bytes, None]:
        turn = await self.turn()
        try:
            await turn.push(text)
            await turn.end()
            async for audio in turn.audio():
                yield audio
        finally:
            await turn.cancel()  # no-op once the turn is done


class CartesiaTurnVoice(TurnVoice):
    """One agent turn on one Cartesia context (opened with the turn's first chunk)."""

    def __init__(self, synth: CartesiaSynthesizer) -> None:
        super().__init__(synth)
        self.cartesia = synth
        self.turn: CartesiaTurn | None = None

    def speak(self, text: str, final: bool = False) -> AsyncGenerator[bytes, None]:
        return self.cartesia.measured(text, lambda t: self._speak(t, final))

    async def _speak(self, text: str, final: bool) -> AsyncGenerator[bytes, None]:
        if self.turn is None:
            self.turn = await self.cartesia.turn()
        turn, complete = self.turn, False
        if turn.finished:
            raise CartesiaRequestError("the turn's context is already closed")
        try:
            await turn.push(text)
            await (turn.end() if final else turn.flush())
            async for audio in turn.audio():
                yield audio
            complete = True
        finally:
            if not complete:  # the rest of this chunk would come out ahead of the next one's
                await turn.cancel()

    async def aclose(self) -> None:
        if self.turn is not None:
            await self.turn.cancel()  # no-op once its `done` came


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


def _socket(conn: Any) -> Any:
    # The SDK keeps the websockets connection private and exposes no state; we need it to
    # notice a dead connection (its reader task only logs) and to reconnect cleanly.
    return conn._connection


def _closed(conn: Any) -> bool:
    return socket_closed(_socket(conn))


async def _close_quietly(conn: Any) -> None:
    try:
        async with asyncio.timeout(1.0):
            await conn.close()
    except Exception:  # already gone, or a peer that never answers the close
        _socket(conn).transport.abort()
