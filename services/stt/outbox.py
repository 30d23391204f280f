"""What the stt stage tells the rest of the call about one utterance: speech events, interim and
final transcripts with their timings, and the `stt.utterance` / `stt.empty` call events."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace

from ringline.contracts import subjects
from ringline.contracts.events import STT_EMPTY, STT_UTTERANCE
from ringline.contracts.messages import CallEvent, SpeechEvent, Transcript, TurnTiming, now
from ringline.contracts.runtime import CallBus, inject_headers

from .endofturn import Verdict
from .recognizer import RecognitionResult
from .vad import VadEvent

log = logging.getLogger("ringline.stt.session")

SpeechKind = Literal["started", "continuing", "stopped"]


@dataclass
class Utterance:
    """One utterance of the caller, from speech onset to the end of the turn."""

    id: str
    started_at: float
    span: trace.Span
    early_at: float = 0.0
    """Voiced end covered by the speculative decode in `early` (0 when there is none)."""
    early: asyncio.Task[RecognitionResult] | None = None
    verdict: Verdict | None = None
    """End-of-turn verdict of the early text, while that text still covers all that was said."""
    interim: str = ""
    """The last interim text published."""
    judged_at: float = 0.0
    """Voiced end the end-of-turn model is judging (or judged) in `judging` (0: none)."""
    judging: asyncio.Task[float] | None = None
    model: Verdict | None = None
    """The end-of-turn model's verdict on the voice, while it still covers all that was said."""
    probability: float | None = None


class Outbox:
    def __init__(self, bus: CallBus, call_id: str) -> None:
        self.bus = bus
        self.call_id = call_id

    async def speech(self, utterance: Utterance, kind: SpeechKind, at: float, voiced_ms: float) -> None:
        event = SpeechEvent(
            call_id=self.call_id,
            utterance_id=utterance.id,
            kind=kind,
            at=at,
            started_at=utterance.started_at,
            voiced_ms=voiced_ms,
        )
        await self.bus.publish(event, subjects.speech(self.call_id))

    async def interim(self, utterance: Utterance, result: RecognitionResult, voiced_end: float) -> None:
        transcript = Transcript(
            call_id=self.call_id,
            utterance_id=utterance.id,
            text=result.text,
            is_final=False,
            end_of_turn=False,
            speech_started_at=utterance.started_at,
            speech_ended_at=voiced_end,
            provider=result.provider,
        )
        await self.bus.publish(transcript, subjects.transcript(self.call_id))

    async def final(
        self,
        utterance: Utterance,
        event: VadEvent,
        result: RecognitionResult,
        early_used: bool,
        verdict: Verdict | None,
    ) -> None:
        """The final transcript (none when nothing was recognised) and its call event."""
        emitted_at = now()
        end_of_turn_ms = round((emitted_at - event.at) * 1000, 1)
        data: dict[str, Any] = {
            "utterance_id": utterance.id,
            "end_reason": event.reason,
            "end_of_turn_ms": end_of_turn_ms,
            "latency_ms": end_of_turn_ms,
            "silence_waited_ms": round(event.silence_ms),
            "voiced_ms": round(event.voiced_ms),
            "audio_ms": round(result.audio_s * 1000),
            "decode_ms": round(result.decode_s * 1000, 1),
            "early_decode": early_used,
            "verdict": verdict or "",
            "turn_model": utterance.model or "",
            "turn_probability": round(utterance.probability, 3) if utterance.probability is not None else None,
            "interim_equal": bool(utterance.interim) and utterance.interim == result.text,
            "level_dbfs": round(result.level_dbfs, 1),
        }
        utterance.span.set_attributes({
            "stt.audio_ms": data["audio_ms"],
            "stt.decode_ms": round(result.decode_s * 1000),
            "stt.early_decode": early_used,
            "stt.end_reason": event.reason,
            "stt.silence_waited_ms": data["silence_waited_ms"],
            "stt.latency_ms": round(end_of_turn_ms),
        })
        if result.empty:
            data["reason"] = result.error or result.dropped or "no words"
            await self._event(STT_EMPTY, utterance.id, data)
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
            end_reason=event.reason,
        )
        headers = inject_headers(trace.set_span_in_context(utterance.span))
        await self.bus.publish(transcript, subjects.transcript(self.call_id), headers=headers)
        timing = TurnTiming(speech_ended_at=event.at, transcript_at=emitted_at, stt_provider=result.provider)
        await self._event(STT_UTTERANCE, utterance.id, data, timing)
        log.info(
            "call %s %s: %.2f s audio, decode %.0f ms%s, %s after %d ms of silence, end->transcript %.0f ms",
            self.call_id, utterance.id, result.audio_s, result.decode_s * 1000,
            " (early)" if early_used else "", event.reason, event.silence_ms, end_of_turn_ms,
        )

    async def _event(
        self, name: str, utterance_id: str, data: dict[str, Any], timing: TurnTiming | None = None
    ) -> None:
        event = CallEvent(call_id=self.call_id, name=name, turn_id=utterance_id, data=data, timing=timing)
        await self.bus.publish(event, subjects.event(self.call_id))
