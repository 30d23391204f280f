"""Cartesia's TTS WebSocket (`/tts/websocket`), as the `cartesia` 4.x SDK speaks it.

The SDK connects to `ws(s)://HOST/tts/websocket` with `Authorization: Bearer KEY` and a
`cartesia-version` header (browsers use `?api_key=..&cartesia_version=..` instead; both are
accepted). Text frames carry JSON generation requests

    {"context_id", "model_id", "transcript", "voice", "output_format", "continue", ...}

and cancel requests `{"context_id", "cancel": true}`. The server answers per context with
`{"type": "chunk", "data": <base64 audio>, "done": false, "status_code": 206, "step_time",
"context_id", "flush_id"}` messages, then `{"type": "done", "done": true, "status_code": 206,
"context_id"}` once a request with `continue: false` arrived and its audio went out, or an
`{"type": "error", "status_code", "title", "message", "error_code", "done": true, ...}`.

Continuations, as the API documents them: requests on one `context_id` with `continue: true`
add text to the same generation (transcripts are joined verbatim), `continue: false` (often
with an empty transcript) closes the context, and a request on a closed or cancelled context
is an error. Text is buffered up to `max_buffer_delay_ms` (the API's default: 3000 ms; 0 starts
at once) before it is spoken, unless a flush or the close comes first. A manual flush (`flush:
true`, empty transcript, `continue: true`) speaks what was buffered, answers `{"type":
"flush_done", "done": false, "flush_done": true, "flush_id": N, "status_code": 206,
"context_id"}` after that audio, and moves on to flush_id N+1: chunks carry the flush_id of
the part they belong to, starting at 1.

Audio is a voiced buzz, `ms_per_char` per character of transcript (default 65 ms: about 150
words a minute), in the requested raw encoding, made `rtf` times faster than real time after
`first_audio_ms`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ringline.contracts.audio import mulaw_encode

from .common import Faults, Outbox, WsDouble, header_dict, json_response

ENCODINGS = {"pcm_mulaw", "pcm_s16le"}
RATES = {8000, 16000, 22050, 24000, 44100, 48000}
DEFAULT_BUFFER_DELAY_MS = 3000


@dataclass
class CartesiaFaults(Faults):
    first_audio_ms: float = 0.0
    """Model time before a context's first chunk."""
    rtf: float = 0.1
    """Generation time / audio time for the chunks after the first."""
    context_error_status: int | None = None
    """Answer the next `context_error_count` generation requests (a new context's first, or more
    text or a flush on an open one) with an error message of this status; the context is over."""
    context_error_count: int = 1


@dataclass
class TtsRecord:
    """What one connection received and sent."""

    query: dict[str, list[str]]
    headers: dict[str, str]
    requests: list[dict[str, Any]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    chunks_after_cancel: int = 0
    sent: list[Any] = field(default_factory=list)

    def transcripts(self, context_id: str) -> list[str]:
        """The text sent on a context, in order (flushes, cancels and the closing request left out)."""
        return [r.get("transcript", "") for r in self.requests
                if r.get("context_id") == context_id and "cancel" not in r and r.get("transcript")]

    def flushes(self, context_id: str) -> int:
        return sum(1 for r in self.requests if r.get("context_id") == context_id and r.get("flush"))


def speech_like(seconds: float, rate: int) -> np.ndarray:
    """A 140 Hz harmonic buzz with a 4 Hz syllable envelope, int16."""
    t = np.arange(int(seconds * rate)) / rate
    wave = sum(0.5 / k * np.sin(2 * np.pi * 140 * k * t) for k in range(1, 12) if 140 * k < rate / 2)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    return np.asarray(wave * envelope * 12000, dtype=np.int16)


def encode(pcm: np.ndarray, encoding: str) -> bytes:
    return mulaw_encode(pcm) if encoding == "pcm_mulaw" else pcm.astype("<i2").tobytes()


class _Context:
    def __init__(self, double: CartesiaDouble, record: TtsRecord, outbox: Outbox, cid: str,
                 output_format: dict[str, Any], buffer_delay_ms: float) -> None:
        self.double, self.record, self.out, self.id = double, record, outbox, cid
        self.encoding = output_format["encoding"]
        self.rate = int(output_format["sample_rate"])
        self.buffer_delay_s = buffer_delay_ms / 1000
        self.closed = False  # a request with continue=false arrived
        self.cancelled = False
        self.flush_id = 1
        self.inputs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # ("text" | "flush" | "end", text)
        self.task = asyncio.create_task(self._run(), name=f"cartesia-ctx-{cid}")

    def add(self, transcript: str, more: bool, flush: bool) -> None:
        if transcript:
            self.inputs.put_nowait(("text", transcript))
        if flush:
            self.inputs.put_nowait(("flush", ""))
        if not more:
            self.closed = True
            self.inputs.put_nowait(("end", ""))

    def cancel(self) -> None:
        self.cancelled = True
        self.task.cancel()

    def fail(self) -> None:
        """An error ended the context: nothing more of it is sent, nothing more is accepted."""
        self.closed = True
        self.task.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        buffered, due = "", 0.0
        spoken = False
        while True:
            try:
                wait = max(0.0, due - loop.time()) if buffered else None
                kind, text = await asyncio.wait_for(self.inputs.get(), wait)
            except TimeoutError:
                kind, text = "due", ""  # the buffer delay is up: speak what is buffered
            if kind == "text":
                due = due if buffered else loop.time() + self.buffer_delay_s
                buffered += text
                if self.buffer_delay_s > 0:
                    continue
            if buffered.strip():
                if not spoken:
                    await asyncio.sleep(self.double.faults.first_audio_ms / 1000)
                    spoken = True
                await self._speak(buffered)
            buffered = ""
            if kind == "flush":
                self.out.put({"type": "flush_done", "done": False, "flush_done": True, "flush_id": self.flush_id,
                              "status_code": 206, "context_id": self.id})
                self.flush_id += 1
            elif kind == "end":
                self.out.put({"type": "done", "done": True, "status_code": 206, "context_id": self.id})
                return

    async def _speak(self, text: str) -> None:
        audio = encode(speech_like(len(text.strip()) * self.double.ms_per_char / 1000, self.rate), self.encoding)
        step = self.rate * self.double.chunk_ms // 1000 * (1 if self.encoding == "pcm_mulaw" else 2)
        for start in range(0, len(audio), step):
            if self.cancelled:
                self.record.chunks_after_cancel += 1
                return
            self.out.put({"type": "chunk", "data": base64.b64encode(audio[start : start + step]).decode(),
                          "done": False, "status_code": 206, "step_time": 12.5, "context_id": self.id,
                          "flush_id": self.flush_id})
            await asyncio.sleep(self.double.chunk_ms * self.double.faults.rtf / 1000)


class CartesiaDouble(WsDouble):
    """`async with CartesiaDouble() as c:` then `AsyncCartesia(api_key=.., websocket_base_url=c.ws_url)`."""

    def __init__(self, faults: CartesiaFaults | None = None, ms_per_char: float = 65.0,
                 chunk_ms: int = 100, api_key: str | None = None) -> None:
        super().__init__()
        self.faults = faults or CartesiaFaults()
        self.ms_per_char = ms_per_char
        self.chunk_ms = chunk_ms
        self.api_key = api_key
        self.connections: list[TtsRecord] = []
        self._context_errors = 0

    def reject(self, connection: ServerConnection, status: int) -> Response:
        titles = {429: "Too many requests", 401: "Unauthorized", 402: "Insufficient credits"}
        return json_response(connection, status, {"error": titles.get(status, "Internal server error")})

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != "/tts/websocket":
            return json_response(connection, 404, {"error": "Not found"})
        query = parse_qs(url.query)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        key = bearer or request.headers.get("X-API-Key", "") or (query.get("api_key") or [""])[0]
        if not key or (self.api_key and key != self.api_key):
            return self.reject(connection, 401)
        return None

    async def handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        record = TtsRecord(parse_qs(urlsplit(ws.request.path).query), header_dict(ws.request.headers))
        self.connections.append(record)
        outbox = Outbox(ws, self.faults)
        record.sent = outbox.sent
        contexts: dict[str, _Context] = {}
        try:
            async for message in ws:
                try:
                    request = json.loads(message)
                except ValueError:
                    outbox.put(self._error("", 400, "Invalid JSON", "invalid_request"))
                    continue
                record.requests.append(request)
                self._on_request(request, record, outbox, contexts)
        except ConnectionClosed:
            pass
        finally:
            for context in contexts.values():
                context.task.cancel()
            await outbox.aclose()

    def _on_request(self, request: dict[str, Any], record: TtsRecord, outbox: Outbox,
                    contexts: dict[str, _Context]) -> None:
        cid = str(request.get("context_id") or "")
        if request.get("cancel"):
            if cid in contexts:
                contexts[cid].cancel()
            record.cancelled.append(cid)
            return
        problem = self._invalid(request)
        if problem:
            outbox.put(self._error(cid, 400, problem, "invalid_request"))
            return
        context = contexts.get(cid)
        if context is not None and (context.closed or context.cancelled):
            outbox.put(self._error(cid, 400, "Context has already been closed", "context_closed"))
            return
        if context is None:
            delay = request.get("max_buffer_delay_ms")
            context = contexts[cid] = _Context(self, record, outbox, cid, request["output_format"],
                                               DEFAULT_BUFFER_DELAY_MS if delay is None else float(delay))
        status = self.faults.context_error_status
        if status is not None and self._context_errors < self.faults.context_error_count:
            self._context_errors += 1
            context.fail()
            code = "rate_limited" if status == 429 else "internal"
            outbox.put(self._error(cid, status, f"injected HTTP {status}", code))
            return
        context.add(str(request.get("transcript", "")), bool(request.get("continue", False)),
                    bool(request.get("flush", False)))

    @staticmethod
    def _invalid(request: dict[str, Any]) -> str:
        missing = [k for k in ("context_id", "model_id", "transcript", "voice", "output_format") if k not in request]
        if missing:
            return f"missing {', '.join(missing)}"
        fmt = request["output_format"]
        if not isinstance(fmt, dict) or fmt.get("container") != "raw":
            return "only container 'raw' is supported on the WebSocket"
        if fmt.get("encoding") not in ENCODINGS or fmt.get("sample_rate") not in RATES:
            return f"unsupported output_format {fmt}"
        return ""

    @staticmethod
    def _error(cid: str, status: int, message: str, code: str) -> dict[str, Any]:
        return {"type": "error", "context_id": cid or None, "status_code": status, "done": True,
                "title": "Request failed", "message": message, "error_code": code,
                "doc_url": "https://docs.cartesia.ai/api-reference/tts/websocket",
                "request_id": str(uuid.uuid4())}
