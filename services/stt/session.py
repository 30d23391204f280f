"""One call's speech-to-text: caller audio in, speech events and final transcripts out.

Frames are VAD-processed in order as they arrive; decoding runs off the event loop (in the
recognizer's worker thread), so audio keeps flowing through the endpointer during a decode.

Early decode: once the caller has been silent for `early_silence_ms`, the utterance so far is
decoded speculatively. If speech resumes, that result is discarded; if the silence reaches
`end_silence_ms` with no new voiced audio, the speculative result is the transcript, so most of
the decode time is hidden inside the end-of-utterance wait.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from opentelemetry import trace

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode
from ringline.contracts.messages import (
    AudioFrame,
    CallEvent,
    CallStart,
    SpeechEvent,
    Transcript,
    TurnTiming,
    now,
)
from ringline.contracts.runtime import CallBus, CallSession, inject_headers, seconds_to_ns, tracer

from .recognizer import RecognitionResult, Recognizer
from .vad import Endpointer, EndpointerConfig, VadEvent

log = logging.getLogger("ringline.stt.session")
_tracer = tracer("stt")

EMPTY_EVENT = "stt.empty"
UTTERANCE_EVENT = "stt.utterance"


@dataclass
class _Utterance:
    id: str
    started_at: float
    span: trace.Span
    early_at: float = 0.0
    """Voiced end covered by the speculative decode in `early` (0 when there is none)."""
    early: asyncio.Task[RecognitionResult] | None = None


@dataclass
class SessionStats:
    utterances: int = 0
    early_started: int = 0
    early_used: int = 0
    early_discarded: int = 0
    frames_skipped: int = 0
    seq_gaps: int = 0


class SttSession(CallSession):
    def __init__(
        self,
        call: CallStart,
        bus: CallBus,
        recognizer: Recognizer,
        config: EndpointerConfig | None = None,
    ) -> None:
        super().__init__(call, bus)
        self.recognizer = recognizer
        self.endpointer = Endpointer(config)
        self.stats = SessionStats()
        self._utterance: _Utterance | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_finish: asyncio.Task[None] | None = None
        self._last_seq = -1

    async def start(self) -> None:
        await self.bus.subscribe(subjects.audio_in(self.call_id), self.on_frame)

    async def close(self, reason: str) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._utterance is not None:
            self._utterance.span.set_attribute("stt.abandoned", reason)
            self._utterance.span.end()
            self._utterance = None
        self.endpointer.reset()

    # -- audio in ---------------------------------------------------------------------------

    async def on_frame(self, frame: AudioFrame) -> None:
        try:
            events = self._feed(frame)
            for event in events:
                await self._on_vad(event)
        except Exception:
            self.stats.frames_skipped += 1
            log.exception("call %s: frame skipped", self.call_id)

    def _feed(self, frame: Any) -> list[VadEvent]:
        if not isinstance(frame, AudioFrame) or not isinstance(frame.payload, bytes | bytearray):
            self.stats.frames_skipped += 1
            log.warning("call %s: skipping malformed frame %.80r", self.call_id, frame)
            return []
        if frame.call_id != self.call_id:
            self.stats.frames_skipped += 1
            log.warning("call %s: skipping a frame of call %s", self.call_id, frame.call_id)
            return []
        if self._last_seq >= 0 and frame.seq != self._last_seq + 1:
            self.stats.seq_gaps += 1
            log.debug("call %s: frame seq %d after %d", self.call_id, frame.seq, self._last_seq)
        self._last_seq = frame.seq
        if not frame.payload:
            return []
        return self.endpointer.push(mulaw_decode(bytes(frame.payload)), frame.captured_at)

    async def _on_vad(self, event: VadEvent) -> None:
        if event.kind == "started":
            await self._started(event)
            return
        utterance = self._utterance
        if utterance is None:  # pragma: no cover - the endpointer always starts first
            return
        if event.kind == "paused" and event.audio is not None:
            self._drop_early(utterance)
            utterance.early_at = event.at
            utterance.early = self._spawn(self.recognizer.transcribe(event.audio), "early-decode")
            self.stats.early_started += 1
        elif event.kind == "resumed":
            if self._drop_early(utterance):
                self.stats.early_discarded += 1
        elif event.kind == "stopped":
            await self._stopped(utterance, event)

    async def _started(self, event: VadEvent) -> None:
        utterance_id = f"u-{uuid.uuid4().hex[:12]}"
        span = _tracer.start_span(
            "stt.utterance",
            start_time=seconds_to_ns(event.at),
            attributes={"call.id": self.call_id, "stt.utterance_id": utterance_id},
        )
        self._utterance = _Utterance(utterance_id, event.at, span)
        self.stats.utterances += 1
        started = SpeechEvent(call_id=self.call_id, utterance_id=utterance_id, kind="started", at=event.at)
        await self.bus.publish(started, subjects.speech(self.call_id))

    async def _stopped(self, utterance: _Utterance, event: VadEvent) -> None:
        self._utterance = None
        stopped = SpeechEvent(call_id=self.call_id, utterance_id=utterance.id, kind="stopped", at=event.at)
        await self.bus.publish(stopped, subjects.speech(self.call_id))
        early, early_used = utterance.early, utterance.early_at == event.at
        if early is not None and early_used:
            decode = early  # it covered every voiced frame of the utterance
            utterance.early = None
            self.stats.early_used += 1
        else:
            early_used = False
            self._drop_early(utterance)
            audio = event.audio if event.audio is not None else np.zeros(0, dtype=np.int16)
            decode = self._spawn(self.recognizer.transcribe(audio), "decode")
        previous = self._last_finish
        self._last_finish = self._spawn(
            self._finish(utterance, event, decode, early_used, previous), "transcript"
        )

    def _drop_early(self, utterance: _Utterance) -> bool:
        """Cancel a speculative decode (a queued one never runs; a running one is ignored)."""
        task, utterance.early, utterance.early_at = utterance.early, None, 0.0
        if task is None:
            return False
        task.cancel()
        return True

    # -- transcript out -----------------------------------------------------------------------

    async def _finish(
        self,
        utterance: _Utterance,
        event: VadEvent,
        decode: asyncio.Task[RecognitionResult],
        early_used: bool,
        previous: asyncio.Task[None] | None,
    ) -> None:
        span = utterance.span
        try:
            result = await decode
            if previous is not None:  # transcripts leave in utterance order
                await asyncio.wait([previous])
            emitted_at = now()
            span.set_attributes({
                "stt.audio_ms": round(result.audio_s * 1000),
                "stt.decode_ms": round(result.decode_s * 1000),
                "stt.early_decode": early_used,
                "stt.end_reason": event.reason,
                "stt.latency_ms": round((emitted_at - event.at) * 1000),
            })
            data = {
                "utterance_id": utterance.id,
                "audio_ms": round(result.audio_s * 1000),
                "decode_ms": round(result.decode_s * 1000, 1),
                "latency_ms": round((emitted_at - event.at) * 1000, 1),
                "early_decode": early_used,
                "end_reason": event.reason,
                "level_dbfs": round(result.level_dbfs, 1),
            }
            if result.empty:
                data["reason"] = result.error or result.dropped or "no words"
                await self._event(EMPTY_EVENT, utterance.id, data)
                return
            transcript = Transcript(
                call_id=self.call_id,
                utterance_id=utterance.id,
                text=result.text,
                is_final=True,
                end_of_turn=True,
                speech_started_at=utterance.started_at,
                speech_ended_at=event.at,
                emitted_at=emitted_at,
                provider=result.provider,
            )
            headers = inject_headers(trace.set_span_in_context(span))
            await self.bus.publish(transcript, subjects.transcript(self.call_id), headers=headers)
            timing = TurnTiming(
                speech_ended_at=event.at, transcript_at=emitted_at, stt_provider=result.provider
            )
            await self._event(UTTERANCE_EVENT, utterance.id, data, timing)
            log.info(
                "call %s %s: %.2f s audio, decode %.0f ms%s, end->transcript %.0f ms",
                self.call_id, utterance.id, result.audio_s, result.decode_s * 1000,
                " (early)" if early_used else "", data["latency_ms"],
            )
        finally:
            span.end()

    async def _event(
        self, name: str, utterance_id: str, data: dict[str, Any], timing: TurnTiming | None = None
    ) -> None:
        event = CallEvent(call_id=self.call_id, name=name, turn_id=utterance_id, data=data, timing=timing)
        await self.bus.publish(event, subjects.event(self.call_id))

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.bus.spawn(coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
