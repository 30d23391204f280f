"""Deepgram's live transcription WebSocket (`/v1/listen`), as `deepgram-sdk` 7.x speaks it.

The client connects to `ws://HOST/v1/listen?model=nova-3&encoding=mulaw&sample_rate=8000&...`
with `Authorization: Token KEY`, streams binary audio and JSON control messages (`KeepAlive`,
`Finalize`, `CloseStream`), and receives JSON `Results`, `SpeechStarted`, `UtteranceEnd` and
`Metadata` messages.

Speech is found by energy on the audio received, in audio time (so a client may stream faster
than real time): two voiced 20 ms frames start an utterance (`SpeechStarted`), interim
`Results` follow every `interim_ms` of speech, a final `Results` (`is_final`, `speech_final`)
after `endpointing` ms of silence, and `UtteranceEnd` once `utterance_end_ms` passed after the
last word. Each utterance's words come from the script, in order. Silent stretches get empty
final `Results`, as Deepgram sends them. With no audio or text for `idle_timeout_s` the
connection closes with 1011 / NET-0001, as Deepgram's does after 10 s. Audio time is counted in
samples, so an endpointing of 200 ms is exactly ten 20 ms frames of silence. A fault can end the
connection as an utterance starts (`fail_at_utterance`: dropped, or closed with 1011).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ringline.contracts.audio import mulaw_decode, rms_dbfs

from .common import Faults, Outbox, WsDouble, header_dict, json_response

MODEL_INFO = {"name": "2-general-nova-3", "version": "2025-01-01.0", "arch": "nova-3"}
_PUNCT = ".,?!;:\"'"


@dataclass
class DeepgramFaults(Faults):
    idle_timeout_s: float = 10.0
    """Close with 1011 NET-0001 after this long without audio or a text message."""
    fail_at_utterance: int | None = None
    """When the N-th utterance of a connection starts (1-based), before anything is said about it:
    drop the TCP connection (no close frame), or close with `fail_close_code`."""
    fail_close_code: int | None = None
    """1011: Deepgram's close for an error on its side (reason NET-0000)."""


@dataclass
class ListenRecord:
    """What one connection received and sent."""

    query: dict[str, list[str]]
    headers: dict[str, str]
    audio_bytes: int = 0
    audio_messages: int = 0
    controls: list[dict[str, Any]] = field(default_factory=list)
    sent: list[Any] = field(default_factory=list)
    close_code: int | None = None
    last_input: float = field(default_factory=time.monotonic)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def count(self, control: str) -> int:
        return sum(1 for c in self.controls if c.get("type") == control)


@dataclass(frozen=True)
class _Params:
    sample_rate: int
    encoding: str
    interim_results: bool
    endpointing_s: float | None  # None: endpointing=false
    utterance_end_s: float | None
    vad_events: bool

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> _Params:
        get = lambda name, default: (query.get(name) or [default])[0]  # noqa: E731
        truthy = lambda name: get(name, "false").lower() == "true"  # noqa: E731
        endpointing = get("endpointing", "10")  # Deepgram's default is 10 ms
        utterance_end = get("utterance_end_ms", "")
        return cls(
            sample_rate=int(get("sample_rate", "8000")),
            encoding=get("encoding", "mulaw"),
            interim_results=truthy("interim_results"),
            endpointing_s=None if endpointing.lower() == "false" else int(endpointing) / 1000,
            utterance_end_s=int(utterance_end) / 1000 if utterance_end else None,
            vad_events=truthy("vad_events"),
        )


class _Listener:
    """The energy endpointer and transcript script of one connection, in audio time."""

    threshold_dbfs = -40.0
    start_frames = 2
    words_per_s = 2.5
    max_segment_s = 8.0  # continuous speech is finalized in segments this long
    silence_final_s = 3.0  # an empty final per this much silence
    unendpointed_final_s = 1.0  # with endpointing=false, finals after this much silence

    def __init__(self, params: _Params, script: deque[str], interim_s: float, outbox: Outbox,
                 fail_at_utterance: int | None = None) -> None:
        self.p = params
        self.fail_at_utterance = fail_at_utterance
        self.script = script
        self.interim_s = interim_s
        self.out = outbox
        self.request_id = str(uuid.uuid4())
        self.frame = params.sample_rate // 50
        self.pending = np.zeros(0, dtype=np.int16)
        self.samples = 0  # audio processed, counted exactly
        self.voiced_run = 0
        self.speaking = False
        self.words: list[str] = []
        self.done_words = 0  # words already sent in finals
        self.speech_start = 0.0
        self.last_voiced = 0.0
        self.segment_start = 0.0
        self.next_interim = 0.0
        self.last_word_end: float | None = None  # for UtteranceEnd
        self.utterances = 0
        self.failed = False  # a fault ended the connection: nothing more is said

    # -- input ----------------------------------------------------------------------------

    def audio(self, data: bytes) -> None:
        if self.failed:
            return
        if self.p.encoding == "linear16":
            pcm = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
        else:
            pcm = mulaw_decode(data)
        self.pending = np.concatenate([self.pending, pcm])
        while self.pending.size >= self.frame:
            frame, self.pending = self.pending[: self.frame], self.pending[self.frame :]
            self.samples += self.frame
            self._step(rms_dbfs(frame) > self.threshold_dbfs)

    @property
    def t(self) -> float:
        """Audio seconds processed."""
        return self.samples / self.p.sample_rate

    def _since(self, start: float) -> float:
        """Audio seconds from `start` to now, to the microsecond: 10 frames of silence are 200 ms,
        not 199.99999 (float sums would end some turns a frame late)."""
        return round(self.t - start, 6)

    def flush(self, from_finalize: bool) -> None:
        """Finalize / CloseStream: everything heard so far becomes final now."""
        words = self._timed(self.words[self.done_words :], self.segment_start, max(self.last_voiced, self.t))
        self._results(words, self.segment_start, self.t, True, False, from_finalize)
        self.done_words = len(self.words)
        self.segment_start = self.t
        if words:
            self.last_word_end = words[-1][2]

    def metadata(self) -> dict[str, Any]:
        model_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, MODEL_INFO["name"]))
        return {"type": "Metadata", "transaction_key": "deprecated", "request_id": self.request_id,
                "sha256": "0" * 64, "created": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
                "duration": round(self.t, 3), "channels": 1, "models": [model_uuid],
                "model_info": {model_uuid: MODEL_INFO}}

    # -- the endpointer -------------------------------------------------------------------

    def _step(self, voiced: bool) -> None:
        self.voiced_run = self.voiced_run + 1 if voiced else 0
        if not self.speaking:
            if self.voiced_run >= self.start_frames:
                self._start(self.t - self.start_frames * self.frame / self.p.sample_rate)
            elif self._utterance_end_due():
                self.out.put({"type": "UtteranceEnd", "channel": [0, 1], "last_word_end": round(self.last_word_end, 3)})
                self.last_word_end = None
            elif self._since(self.segment_start) >= self.silence_final_s:
                self._results([], self.segment_start, self.t, True, False)
                self.segment_start = self.t
            return
        if voiced:
            self.last_voiced = self.t
        silence = self._since(self.last_voiced)
        if self.p.endpointing_s is not None and silence >= self.p.endpointing_s:
            self._final(speech_final=True)
        elif self.p.endpointing_s is None and silence >= self.unendpointed_final_s:
            self._final(speech_final=False)
        elif self._since(self.segment_start) >= self.max_segment_s:
            count = self._revealed()
            words = self._timed(self.words[self.done_words : count], self.segment_start, self.t)
            self._results(words, self.segment_start, self.t, True, False)
            self.done_words, self.segment_start = count, self.t
        elif self.p.interim_results and self._since(self.next_interim) >= 0:
            count = self._revealed()
            words = self._timed(self.words[self.done_words : count], self.segment_start, self.t)
            self._results(words, self.segment_start, self.t, False, False)
            self.next_interim += self.interim_s

    def _start(self, at: float) -> None:
        self.utterances += 1
        if self.fail_at_utterance == self.utterances:
            self.failed = True
            return
        if self.t - self.segment_start > 0.5 and self.segment_start < at:  # close the silent window
            self._results([], self.segment_start, at, True, False)
            self.segment_start = at
        self.speaking = True
        self.words = (self.script.popleft() if self.script else "").split()
        self.done_words = 0
        self.speech_start = at
        self.last_voiced = self.t
        self.next_interim = at + self.interim_s
        self.last_word_end = None  # new words: no UtteranceEnd for the previous gap
        if self.p.vad_events:
            self.out.put({"type": "SpeechStarted", "channel": [0], "timestamp": round(at, 3)})

    def _final(self, speech_final: bool) -> None:
        words = self._timed(self.words[self.done_words :], max(self.segment_start, self.speech_start), self.last_voiced)
        self._results(words, self.segment_start, self.t, True, speech_final)
        if words:
            self.last_word_end = words[-1][2]
        self.speaking = False
        self.done_words = len(self.words)
        self.segment_start = self.t

    def _utterance_end_due(self) -> bool:
        return (self.p.interim_results and self.p.utterance_end_s is not None and self.last_word_end is not None
                and self._since(self.last_word_end) >= self.p.utterance_end_s)

    def _revealed(self) -> int:
        spoken = int((self.t - self.speech_start) * self.words_per_s) + 1
        return max(self.done_words, min(len(self.words), spoken))

    @staticmethod
    def _timed(words: list[str], start: float, end: float) -> list[tuple[str, float, float]]:
        if not words:
            return []
        step = max(end - start, 0.0) / len(words)
        return [(w, start + i * step, start + (i + 1) * step) for i, w in enumerate(words)]

    def _results(self, words: list[tuple[str, float, float]], start: float, end: float,
                 is_final: bool, speech_final: bool, from_finalize: bool = False) -> None:
        alternative = {
            "transcript": " ".join(w for w, _, _ in words),
            "confidence": 0.99 if words else 0.0,
            "words": [{"word": w.lower().strip(_PUNCT), "start": round(s, 3), "end": round(e, 3),
                       "confidence": 0.99, "punctuated_word": w} for w, s, e in words],
        }
        model_uuid = str(uuid.uuid5(uuid.NAMESPACE_DNS, MODEL_INFO["name"]))
        self.out.put({
            "type": "Results", "channel_index": [0, 1], "duration": round(max(end - start, 0.0), 3),
            "start": round(start, 3), "is_final": is_final, "speech_final": speech_final,
            "from_finalize": from_finalize, "channel": {"alternatives": [alternative]},
            "metadata": {"request_id": self.request_id, "model_info": MODEL_INFO, "model_uuid": model_uuid},
        })


class DeepgramDouble(WsDouble):
    """`async with DeepgramDouble(script=[...]) as dg:` then `environment=dg.environment()`."""

    def __init__(self, script: Iterable[str] = (), faults: DeepgramFaults | None = None,
                 interim_ms: int = 500, api_key: str | None = None) -> None:
        super().__init__()
        self.script: deque[str] = deque(script)
        self.faults = faults or DeepgramFaults()
        self.interim_s = interim_ms / 1000
        self.api_key = api_key
        self.connections: list[ListenRecord] = []

    def environment(self) -> Any:
        from deepgram.environment import DeepgramClientEnvironment

        return DeepgramClientEnvironment(base=self.http_url, production=self.ws_url,
                                         agent=self.ws_url, agent_rest=self.http_url)

    def reject(self, connection: ServerConnection, status: int) -> Response:
        codes = {429: "TOO_MANY_REQUESTS", 401: "INVALID_AUTH", 402: "ASR_PAYMENT_REQUIRED"}
        body = {"err_code": codes.get(status, "INTERNAL_SERVER_ERROR"),
                "err_msg": f"double rejected the connection with {status}", "request_id": str(uuid.uuid4())}
        return json_response(connection, status, body, {"dg-request-id": body["request_id"]})

    def check_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if urlsplit(request.path).path != "/v1/listen":
            return json_response(connection, 404, {"err_code": "NOT_FOUND", "err_msg": request.path})
        auth = request.headers.get("Authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme not in ("Token", "Bearer") or not key or (self.api_key and key != self.api_key):
            return self.reject(connection, 401)
        return None

    async def handle(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        record = ListenRecord(parse_qs(urlsplit(request.path).query), header_dict(request.headers))
        self.connections.append(record)
        outbox = Outbox(ws, self.faults)
        record.sent = outbox.sent
        listener = _Listener(_Params.parse(record.query), self.script, self.interim_s, outbox,
                             self.faults.fail_at_utterance)
        watchdog = asyncio.create_task(self._idle_watch(ws, record, outbox))
        try:
            async for message in ws:
                record.last_input = time.monotonic()
                if isinstance(message, bytes):
                    record.audio_bytes += len(message)
                    record.audio_messages += 1
                    listener.audio(message)
                    if listener.failed:
                        await self._fail(ws, outbox)
                        break
                    continue
                control = json.loads(message)
                record.controls.append(control)
                kind = control.get("type")
                if kind == "Finalize":
                    listener.flush(from_finalize=True)
                elif kind == "CloseStream":
                    listener.flush(from_finalize=False)
                    outbox.put(listener.metadata())
                    outbox.close_after_sending()
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            if not outbox.stalled:
                await outbox.flushed(timeout=2.0)
            await outbox.aclose()
            record.close_code = ws.close_code

    async def _fail(self, ws: ServerConnection, outbox: Outbox) -> None:
        """`fail_at_utterance`: what was queued goes out, then the connection ends badly."""
        await outbox.flushed(timeout=2.0)
        if self.faults.fail_close_code is None:
            outbox.dropped = True
            ws.transport.abort()
        else:
            await ws.close(self.faults.fail_close_code, "Deepgram encountered an internal error. NET-0000")

    async def _idle_watch(self, ws: ServerConnection, record: ListenRecord, outbox: Outbox) -> None:
        while True:
            await asyncio.sleep(0.05)
            if time.monotonic() - record.last_input > self.faults.idle_timeout_s and not outbox.stalled:
                reason = "Deepgram did not receive audio data or a text message within the timeout window. NET-0001"
                await ws.close(1011, reason)
                return
