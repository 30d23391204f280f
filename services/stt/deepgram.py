"""Cloud STT: Deepgram's live transcription (nova-3) through `deepgram-sdk`.

Deepgram listens to the whole call and ends turns itself, so this is not a per-utterance
`Recognizer`: `DeepgramRecognizer.open()` connects one `DeepgramStream` per call, the stage
`send`s each 20 ms mu-law frame as it comes (8 kHz mu-law goes out as is; frames are gathered
into sends of `send_ms`: the service sends 40 ms a websocket message instead of 20) and reads
normalized `SttEvent`s from `events()`. The stream sends `KeepAlive` when no audio went out for
`keepalive_s`, and `CloseStream` at hang-up (the last finals still arrive).

Failures are `DeepgramError`s: from `open()` (429 -> `DeepgramRateLimited`; 5xx, refused or
no answer -> `DeepgramUnavailable`) or mid-call from `events()` and `send()` (`DeepgramStalled`,
`DeepgramDisconnected`). Once failed, `send()` raises at once: the stage drops frames (never
queues stale audio) and carries on with its fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any

from .stream_events import StreamCapabilities, SttEvent, TurnAssembler, Word

__all__ = ["StreamCapabilities", "SttEvent", "TurnAssembler", "Word"]  # re-exported for callers

log = logging.getLogger("ringline.stt.deepgram")

SAMPLE_RATE = 8000
_END = object()


class DeepgramError(RuntimeError):
    retryable = True

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(f"deepgram: {message}")
        self.status = status


class DeepgramRateLimited(DeepgramError):
    """HTTP 429 on connect: back off; never queue audio for later."""


class DeepgramUnavailable(DeepgramError):
    """5xx on connect, refused, or no answer within `connect_timeout_s`."""


class DeepgramAuthError(DeepgramError):
    retryable = False


class DeepgramStalled(DeepgramError):
    """Audio kept going out and nothing came back for `stall_timeout_s` (or a send blocked)."""


class DeepgramDisconnected(DeepgramError):
    """The server closed or dropped the connection mid-call."""


@dataclass(frozen=True)
class DeepgramOptions:
    api_key: str
    model: str = "nova-3"
    language: str | None = "en"
    interim_results: bool = True
    endpointing_ms: int = 300
    utterance_end_ms: int | None = 1000  # >= 1000 (Deepgram's minimum); None disables
    vad_events: bool = True
    smart_format: bool = True
    keyterms: tuple[str, ...] = ()
    base_url: str | None = None
    """ws(s)://host[:port] instead of wss://api.deepgram.com (tests, proxies, self-hosted)."""
    keepalive_s: float = 4.0
    send_ms: int = 20
    """Audio goes out in sends of this many ms (a `finalize` or the close sends what is gathered)."""
    connect_timeout_s: float = 3.0
    stall_timeout_s: float = 5.0
    send_timeout_s: float = 1.0
    close_timeout_s: float = 2.0


@dataclass
class StreamStats:
    connect_ms: float = 0.0
    audio_bytes: int = 0
    keepalives: int = 0
    messages: int = 0
    billed_s: float | None = None  # Metadata.duration, when the server sent it at close
    request_id: str = ""

    @property
    def audio_s(self) -> float:
        return self.audio_bytes / SAMPLE_RATE


class DeepgramRecognizer:
    """One per process: holds the client; `open()` a `DeepgramStream` per call."""

    capabilities = StreamCapabilities(streaming=True, interim=True, word_timings=True, endpointing=True)

    def __init__(self, options: DeepgramOptions) -> None:
        self.options = options
        self.name = f"deepgram-{options.model}"
        self._client: Any = None

    async def load(self) -> None:
        if self._client is None:
            from deepgram import AsyncDeepgramClient

            kwargs: dict[str, Any] = {"api_key": self.options.api_key}
            if self.options.base_url:
                kwargs["environment"] = _environment(self.options.base_url)
            self._client = AsyncDeepgramClient(**kwargs)

    async def close(self) -> None:
        self._client = None

    async def open(self, keyterms: tuple[str, ...] = ()) -> DeepgramStream:
        """A live stream; `keyterms` (the call's agent's) come on top of the service's own."""
        await self.load()
        options = self.options
        if keyterms:
            options = replace(options, keyterms=tuple(dict.fromkeys((*options.keyterms, *keyterms))))
        stream = DeepgramStream(self._client, options, self.name)
        await stream.connect()
        return stream


def _environment(base_url: str) -> Any:
    from deepgram.environment import DeepgramClientEnvironment

    ws = base_url.rstrip("/")
    http = ws.replace("wss://", "https://", 1).replace("ws://", "http://", 1)
    return DeepgramClientEnvironment(base=http, production=ws, agent=ws, agent_rest=http)


class DeepgramStream:
    """One call's connection. Single consumer of `events()`; `aclose()` exactly once at hang-up."""

    def __init__(self, client: Any, options: DeepgramOptions, name: str) -> None:
        self.options, self.name, self.stats = options, name, StreamStats()
        self._client = client
        self._stack = contextlib.AsyncExitStack()
        self._socket: Any = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.error: DeepgramError | None = None
        self._closing = False
        self._last_send = self._last_rx = self._last_keepalive = time.monotonic()
        self._unanswered_since: float | None = None  # first send since the last message in
        self._gathered = bytearray()  # audio not sent yet: less than `send_ms` of it
        self._gathered_at = 0.0  # when its first sample was captured
        self._send_bytes = max(1, SAMPLE_RATE * options.send_ms // 1000)
        self.turns = TurnAssembler()

    async def __aenter__(self) -> DeepgramStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        from deepgram.core.api_error import ApiError

        o = self.options
        params = {
            "model": o.model, "encoding": "mulaw", "sample_rate": SAMPLE_RATE, "language": o.language,
            "interim_results": _flag(o.interim_results), "endpointing": o.endpointing_ms,
            "vad_events": _flag(o.vad_events), "smart_format": _flag(o.smart_format),
            "utterance_end_ms": o.utterance_end_ms if o.interim_results else None,
            "keyterm": list(o.keyterms) or None,
        }
        started = time.perf_counter()
        connect = self._client.listen.v1.connect(**{k: v for k, v in params.items() if v is not None})
        # Entered in a task of its own: a cancelled legacy-websockets handshake waits out its
        # 10 s close timeout before giving up, so on timeout we leave it to finish in the background.
        entering = asyncio.ensure_future(connect.__aenter__())
        try:
            done, _ = await asyncio.wait({entering}, timeout=o.connect_timeout_s)
        except asyncio.CancelledError:
            _abandon(entering, connect)
            raise
        if not done:
            _abandon(entering, connect)
            raise DeepgramUnavailable(f"no answer to connect within {o.connect_timeout_s:.1f}s")
        try:
            self._socket = entering.result()
        except ApiError as exc:
            raise _status_error(exc.status_code) from exc
        except Exception as exc:  # refused, bad handshake
            raise DeepgramUnavailable(f"cannot connect: {type(exc).__name__}: {exc}") from exc
        self._stack.push_async_exit(connect.__aexit__)
        self.stats.connect_ms = (time.perf_counter() - started) * 1000
        self._last_send = self._last_rx = time.monotonic()
        self._tasks = [asyncio.create_task(self._receive(), name="deepgram-rx"),
                       asyncio.create_task(self._watch(), name="deepgram-keepalive")]

    async def send(self, mulaw: bytes, captured_at: float | None = None) -> None:
        """Send a piece of 8 kHz mu-law, once `send_ms` of audio is gathered (at once with the
        default 20 ms). Raises the stream's `DeepgramError` once failed."""
        if self.error is not None:
            raise self.error
        if self._closing or self._socket is None:
            raise DeepgramDisconnected("stream is closed")
        if not self._gathered:
            self._gathered_at = captured_at if captured_at is not None else time.time()
        self._gathered += mulaw
        if len(self._gathered) >= self._send_bytes:
            await self._send_gathered()

    async def _send_gathered(self) -> None:
        mulaw, captured_at = bytes(self._gathered), self._gathered_at
        self._gathered.clear()
        if not mulaw:
            return
        offset = self.stats.audio_s
        try:
            async with asyncio.timeout(self.options.send_timeout_s):
                await self._socket.send_media(mulaw)
        except TimeoutError:
            raise self._fail(DeepgramStalled(f"a send blocked for {self.options.send_timeout_s:.1f}s")) from None
        except Exception as exc:
            raise self._fail(DeepgramDisconnected(f"send failed: {exc!r}")) from exc
        now = time.monotonic()
        self.turns.sent(offset, captured_at)
        self.stats.audio_bytes += len(mulaw)
        self._last_send = now
        if self._unanswered_since is None:
            self._unanswered_since = now

    async def finalize(self) -> None:
        """Ask for everything heard so far as final now (the turn ends with reason "finalize")."""
        if self.error is None and self._socket is not None and not self._closing:
            await self._send_gathered()
            await self._socket.send_finalize()
            self._last_send = time.monotonic()
            self._unanswered_since = self._unanswered_since or self._last_send

    async def aclose(self) -> None:
        """Hang-up: `CloseStream`, let the last finals arrive (up to `close_timeout_s`), close."""
        if self._closing:
            return
        self._closing = True
        if self.error is None and self._socket is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.options.close_timeout_s):
                    await self._send_gathered()
                    await self._socket.send_close_stream()
                    await asyncio.shield(self._tasks[0])  # the server closes after Metadata
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        try:
            async with asyncio.timeout(self.options.close_timeout_s):
                await self._stack.aclose()
        except (TimeoutError, Exception):
            transport = getattr(getattr(self._socket, "_websocket", None), "transport", None)
            if transport is not None:  # a peer that never answers the close handshake
                transport.abort()
        self._queue.put_nowait(_END)

    async def events(self) -> AsyncIterator[SttEvent]:
        """Normalized events until `aclose()`; raises the `DeepgramError` that ended the stream."""
        while (item := await self._queue.get()) is not _END:
            if isinstance(item, DeepgramError):
                raise item
            yield item

    async def _receive(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for message in self._socket:
                self._last_rx, self._unanswered_since = time.monotonic(), None
                self.stats.messages += 1
                self._on_message(message)
            if not self._closing:
                self._fail(DeepgramDisconnected("the server closed the stream"))
        except ConnectionClosed as exc:
            if not self._closing:
                close = exc.rcvd
                detail = f"{close.code} {close.reason}" if close is not None else "no close frame"
                self._fail(DeepgramDisconnected(f"connection lost ({detail})"))
        except Exception as exc:  # a malformed message must not kill the call silently
            if not self._closing:
                self._fail(DeepgramDisconnected(f"receive failed: {exc!r}"))

    async def _watch(self) -> None:
        o = self.options
        while self.error is None:
            await asyncio.sleep(min(0.25, o.keepalive_s / 4, o.stall_timeout_s / 4))
            now = time.monotonic()
            if self._closing:
                continue
            flowing = now - self._last_send < o.stall_timeout_s / 2  # audio still going out
            if self._unanswered_since is not None and now - self._unanswered_since > o.stall_timeout_s and flowing:
                self._fail(DeepgramStalled(f"no message for {now - self._last_rx:.1f}s while audio flowed"))
            elif now - max(self._last_send, self._last_keepalive) >= o.keepalive_s:
                self._last_keepalive = now
                with contextlib.suppress(Exception):
                    await self._socket.send_keep_alive()
                    self.stats.keepalives += 1

    def _on_message(self, message: Any) -> None:
        kind = getattr(message, "type", None)
        if kind == "Metadata":
            self.stats.billed_s, self.stats.request_id = float(message.duration), str(message.request_id)
        elif kind == "Error":
            self._fail(DeepgramError(f"{message.variant}: {message.description}"))
        for event in self.turns.feed(message, time.time()):
            self._queue.put_nowait(event)

    def _fail(self, error: DeepgramError) -> DeepgramError:
        if self.error is None:
            self.error = error
            log.warning("%s stream failed: %s", self.name, error)
            self._queue.put_nowait(error)
        return self.error


_abandoned: set[asyncio.Future[Any]] = set()  # connect attempts we stopped waiting for


def _abandon(entering: asyncio.Future[Any], connect: Any) -> None:
    """Cancel a connect attempt we stopped waiting for; close it if it connects anyway."""
    def done(task: asyncio.Future[Any]) -> None:
        _abandoned.discard(task)
        if not task.cancelled() and task.exception() is None:
            closing = asyncio.ensure_future(connect.__aexit__(None, None, None))
            _abandoned.add(closing)
            closing.add_done_callback(_forget)

    entering.cancel()
    _abandoned.add(entering)
    entering.add_done_callback(done)


def _forget(task: asyncio.Future[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _status_error(status: int | None) -> DeepgramError:
    if status == 429:
        return DeepgramRateLimited("rate limited (HTTP 429)", status)
    if status in (401, 402, 403):
        return DeepgramAuthError(f"not authorized (HTTP {status})", status)
    return DeepgramUnavailable(f"connect refused (HTTP {status})", status)
