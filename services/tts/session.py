"""One call's TTS: reply chunks in, marked mu-law audio out, interrupts obeyed at once.

A single speaker task takes chunks from the `TurnQueue` in order and speaks each in its own
task, so an interrupt can cancel it mid-sentence (the synthesizer stops its worker job when
its stream is closed). Every chunk ends with exactly one marked `AgentAudio` (the mark rides
on its last piece, or on an empty message when the chunk made no sound or its only piece was
the turn's first, which goes out the moment it is made); the final chunk's marked message also
carries `final=True`.

Each turn is spoken through the synthesizer's `TurnSpeech`, which knows who spoke each chunk
(the fallback chain may switch from Cartesia to Piper mid-turn). Every `AgentAudio` names the
provider of its audio in `timing.tts_provider`; the `tts.chunk` span says it too, with a
`tts.fallback` event per switch; the turn's `tts.turn` event sums it up: `provider` (of the first
audio), `providers` (per chunk), `fallbacks`, and `usage` for the call's cost.

A chunk whose synthesis failed still ends with its mark, so the turn ends and nobody waits for
it forever; but that mark's echo does not mean the chunk's text was heard. The `tts.error` event,
published before the mark, names it (`data["mark"]`, with `data["audio_ms"]` of the chunk that
did go out, and `data["played_instead"]` when the apology line was played in its place). An
interrupted turn publishes no audio and no mark after the interrupt; it publishes one `tts.turn`
with `interrupted: true`, because what the providers were given to speak is billed all the same.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import Any

from faststream.nats import NatsMessage
from opentelemetry.trace import Status, StatusCode

from ringline.contracts import subjects
from ringline.contracts.events import TTS_ERROR, TTS_TURN
from ringline.contracts.messages import (
    SAMPLE_RATE,
    AgentAudio,
    CallEvent,
    CallStart,
    Control,
    ReplyChunk,
    TurnTiming,
    make_mark,
    now,
)
from ringline.contracts.runtime import CallBus, CallSession, extract_context, inject_headers, tracer

from .provider import SynthesisError, Synthesizer, TurnSpeech
from .settings import TtsSettings
from .turns import QueuedChunk, Turn, TurnQueue

log = logging.getLogger("ringline.tts.session")

_STOP_ACTIONS = frozenset({"ended", "hangup"})


class TtsSession(CallSession):
    def __init__(self, call: CallStart, bus: CallBus, synth: Synthesizer, settings: TtsSettings) -> None:
        super().__init__(call, bus)
        self.synth = synth.for_call(call.custom)
        self.queue = TurnQueue(gap_wait_s=settings.gap_wait_s, stall_s=settings.stall_s, on_drop=self._dropped)
        self._tracer = tracer("tts")
        self._speaker: asyncio.Task[Any] | None = None
        self._speaking: tuple[Turn, asyncio.Task[Any]] | None = None
        self.stopped = False

    async def start(self) -> None:
        await self.bus.subscribe(subjects.control(self.call_id), self._on_control)
        await self.bus.subscribe(subjects.reply(self.call_id), self._on_reply)
        self._speaker = self.bus.spawn(self._speak_turns(), "tts-speaker")

    async def close(self, reason: str) -> None:
        self._stop(reason)

    # -- bus handlers ---------------------------------------------------------------------

    async def _on_reply(self, chunk: ReplyChunk, msg: NatsMessage) -> None:
        if chunk.call_id != self.call_id:
            return
        if not self.queue.add(chunk, extract_context(msg.headers)):
            log.debug("call %s: chunk %s/%d ignored (late, duplicate or stopped)",
                      self.call_id, chunk.turn_id, chunk.seq)

    async def _on_control(self, control: Control) -> None:
        if control.action == "interrupt":
            self._interrupt(control.turn_id)
        elif control.action in _STOP_ACTIONS:
            self._stop(control.action)

    def _interrupt(self, turn_id: str) -> None:
        """Stop turn `turn_id` now (every queued turn when it is empty); later chunks are ignored."""
        turn_ids = [turn_id] if turn_id else self.queue.turn_ids()
        for tid in turn_ids:
            turn = self.queue.drop(tid)
            if turn is not None and turn.speech is not None and turn.speech.chunks:
                self.bus.spawn(self._report(self._report_turn(turn, self._timing(turn, None), interrupted=True)),
                               f"report:{tid}")
        if self._speaking is not None:
            turn, task = self._speaking
            if turn.dropped:
                task.cancel()
        log.info("call %s: interrupted %s", self.call_id, ", ".join(turn_ids) or "nothing")

    def _stop(self, reason: str) -> None:
        if self.stopped:
            return
        self.stopped = True
        self.queue.stop()
        if self._speaking is not None:
            self._speaking[1].cancel()
        if self._speaker is not None:
            self._speaker.cancel()
        log.info("call %s: speech stopped (%s)", self.call_id, reason)

    # -- speaking -------------------------------------------------------------------------

    async def _speak_turns(self) -> None:
        while True:
            turn, queued = await self.queue.next()
            task = self.bus.spawn(self._speak(turn, queued), f"speak:{turn.turn_id}:{queued.chunk.seq}")
            self._speaking = (turn, task)
            try:
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                raise
            finally:
                self._speaking = None
            if task.cancelled() or turn.dropped:
                continue  # interrupted (and reported as such); the queue has already forgotten the turn
            if queued.chunk.final:  # even when speaking it failed: the turn is over either way
                self.queue.finish(turn)
                await self._close_speech(turn)
                await self._report(self._report_turn(turn, self._timing(turn, queued.chunk)))
            else:
                self.queue.touch(turn)

    async def _speak(self, turn: Turn, queued: QueuedChunk) -> None:
        chunk = queued.chunk
        if not turn.tts_started_at:
            turn.tts_started_at = now()
        speech = self._speech(turn)
        attributes: dict[str, Any] = {
            "call.id": self.call_id, "turn.id": turn.turn_id, "chunk.seq": chunk.seq,
            "chunk.final": chunk.final, "chunk.chars": len(chunk.text),
            "tts.queued_ms": round((now() - queued.received_at) * 1000, 1),
        }
        interrupted = False
        sent_before = turn.audio_bytes
        span_cm = self._tracer.start_as_current_span("tts.chunk", context=queued.context, attributes=attributes)
        with span_cm as span:
            held: tuple[bytes, str] = (b"", "")  # one piece held back, so the chunk's last piece carries the mark
            try:
                try:
                    async with aclosing(speech.stream(chunk.text, chunk.seq, final=chunk.final)) as pieces:
                        async for piece in pieces:
                            if held[0]:
                                await self._send(turn, chunk, *held, last=False)
                                held = (b"", "")
                            if not turn.first_audio_at:  # the caller waits for this one: never hold it
                                await self._send(turn, chunk, piece, speech.provider, last=False)
                                continue
                            held = (piece, speech.provider)
                except SynthesisError as exc:
                    span.record_exception(exc)
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                    sent = turn.audio_bytes - sent_before + len(held[0])
                    await self._report_error(turn, chunk, exc, sent, speech)
                await self._send(turn, chunk, *held, last=True)
            except asyncio.CancelledError:
                interrupted = True  # an interrupt is not an error of this span
            spoken = speech.chunks[-1]
            span.set_attribute("tts.provider", spoken.provider or "none")
            span.set_attribute("tts.fallbacks", len(spoken.fallbacks))
            for fallback in spoken.fallbacks:
                span.add_event("tts.fallback", fallback.as_dict(chunk.seq), timestamp=fallback.at_ns)
            span.set_attribute("tts.interrupted", interrupted)
            span.set_attribute("tts.turn_audio_ms", _ms(turn.audio_bytes))
        if interrupted:
            raise asyncio.CancelledError

    def _speech(self, turn: Turn) -> TurnSpeech:
        if turn.speech is None:
            turn.speech = self.synth.begin_turn()
        return turn.speech

    def _dropped(self, turn: Turn) -> None:
        """The queue gave up on a turn (interrupt, hang-up, stall): its voices let go of it now
        (Cartesia cancels the turn's context on the server)."""
        if turn.speech is not None:
            self.bus.spawn(self._close_speech(turn), f"close:{turn.turn_id}")

    async def _close_speech(self, turn: Turn) -> None:
        if turn.speech is None:
            return
        try:
            await turn.speech.aclose()
        except Exception:  # a connection already gone: nothing left to release
            log.debug("call %s: closing the speech of %s failed", self.call_id, turn.turn_id, exc_info=True)

    async def _send(self, turn: Turn, chunk: ReplyChunk, payload: bytes, provider: str, last: bool) -> None:
        if turn.dropped or self.stopped:
            raise asyncio.CancelledError  # interrupted between pieces: publish nothing more
        if payload and not turn.first_audio_at:
            turn.first_audio_at = now()
        audio = AgentAudio(
            call_id=self.call_id, turn_id=turn.turn_id, seq=turn.audio_seq, payload=payload,
            mark=make_mark(turn.turn_id, chunk.seq) if last else None,
            final=last and chunk.final, timing=self._timing(turn, chunk, provider),
        )
        turn.audio_seq += 1
        turn.audio_bytes += len(payload)
        if last:
            turn.chunks_spoken += 1
        await self.bus.publish(audio, subjects.audio_out(self.call_id), headers=inject_headers())

    def _timing(self, turn: Turn, chunk: ReplyChunk | None, provider: str | None = None) -> TurnTiming:
        """The chunk's timing with TTS's part filled in; `provider` None: the turn's first audio's."""
        if provider is None:
            provider = turn.speech.first_provider if turn.speech is not None else ""
        return (chunk.timing if chunk is not None else TurnTiming()).model_copy(update={
            "tts_started_at": turn.tts_started_at,
            "first_audio_at": turn.first_audio_at,
            "tts_provider": provider,
        })

    # -- call record ----------------------------------------------------------------------

    async def _report(self, publishing: Any) -> None:
        try:
            await publishing
        except Exception:  # metrics must never stop the speaking
            log.warning("call %s: turn metrics not published", self.call_id, exc_info=True)

    async def _report_error(self, turn: Turn, chunk: ReplyChunk, exc: SynthesisError, sent_bytes: int,
                            speech: TurnSpeech) -> None:
        """Before the chunk's mark goes out: that mark will not mean its text was heard."""
        if turn.dropped or self.stopped:
            return
        log.error("call %s: synthesis of %s/%d failed: %s", self.call_id, turn.turn_id, chunk.seq, exc)
        spoken = speech.chunks[-1]
        data = {"seq": chunk.seq, "mark": make_mark(turn.turn_id, chunk.seq), "text": chunk.text,
                "audio_ms": _ms(sent_bytes), "provider": exc.provider, "error": str(exc.cause),
                "fallbacks": [f.as_dict(chunk.seq) for f in spoken.fallbacks]}
        if spoken.instead:
            data["played_instead"] = spoken.instead
        event = CallEvent(call_id=self.call_id, name=TTS_ERROR, turn_id=turn.turn_id, data=data)
        await self.bus.publish(event, subjects.event(self.call_id))

    async def _report_turn(self, turn: Turn, timing: TurnTiming, interrupted: bool = False) -> None:
        """Per-turn TTS metrics and usage for the call record, once the final chunk has gone out
        (or the turn was interrupted: what the providers were given is billed all the same)."""
        speech = turn.speech
        if speech is None:
            return
        first_audio_ms = (
            round((turn.first_audio_at - turn.tts_started_at) * 1000, 1) if turn.first_audio_at else None
        )
        usages = [u.model_dump(exclude_defaults=True) for u in speech.usages()]
        data: dict[str, Any] = {
            "chunks": turn.chunks_spoken, "audio_ms": _ms(turn.audio_bytes), "first_audio_ms": first_audio_ms,
            "provider": speech.first_provider, "providers": [c.provider for c in speech.chunks],
            "fallbacks": speech.fallbacks, "usages": usages,
        }
        if usages:  # the call record takes one usage an event: the first-choice (paid) provider's
            data["usage"] = usages[0]
        if interrupted:
            data["interrupted"] = True
        event = CallEvent(
            call_id=self.call_id, name=TTS_TURN, turn_id=turn.turn_id, timing=timing, data=data,
        )
        await self.bus.publish(event, subjects.event(self.call_id))


def _ms(mulaw_bytes: int) -> float:
    return round(mulaw_bytes * 1000 / SAMPLE_RATE, 1)
