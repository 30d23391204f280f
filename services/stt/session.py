"""One call's speech-to-text: caller audio in; speech events, interim and final transcripts out.

Frames are VAD-processed in order as they arrive; speech events (`started`, `continuing` every
~50 ms of voiced audio, `stopped`) leave from the frame handler itself, never behind a decode.
Decoding runs off the event loop (in the recognizer's worker thread).

End of turn (see `endofturn`): once the caller has been silent for `early_decode_ms`, the
utterance so far is decoded early and published as an interim transcript. Its text decides how
much silence ends the turn: a complete sentence ends it after `complete_silence_ms`, a sentence
that trails off waits for more speech up to `backstop_silence_ms`, anything else ends after
`end_silence_ms`. If the caller speaks again first, the early result is stale and the utterance
simply goes on. When the turn ends, the early result (it covers every voiced frame) is the final
transcript, so no second decode is needed.

With the end-of-turn model (`smart_turn`, when installed and the call's `TurnConfig.model` is on)
the same pause also has the model judge the caller's voice (off the event loop, like a decode):
complete ends the turn after `model_silence_ms` (the text may still veto it), incomplete waits
up to the backstop. Speech that resumes makes its verdict stale too.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode
from ringline.contracts.messages import AudioFrame, CallStart, Control, ReplyChunk
from ringline.contracts.runtime import CallBus, CallSession, seconds_to_ns, tracer
from ringline.contracts.runtime.fastpath import subscribe_frames

from .endofturn import UNKNOWN, TurnConfig, Verdict, end_reason, text_verdict
from .outbox import Outbox, Utterance
from .prompt import CallHints
from .recognizer import RecognitionResult, Recognizer
from .smart_turn import SmartTurn
from .vad import Endpointer, EndpointerConfig, VadEvent

log = logging.getLogger("ringline.stt.session")
_tracer = tracer("stt")


@dataclass
class SessionStats:
    utterances: int = 0
    early_started: int = 0
    early_used: int = 0
    early_discarded: int = 0
    judged: int = 0
    interims: int = 0
    frames_skipped: int = 0
    seq_gaps: int = 0
    end_reasons: Counter[str] = field(default_factory=Counter)


class SttSession(CallSession):
    def __init__(
        self,
        call: CallStart,
        bus: CallBus,
        recognizer: Recognizer,
        config: EndpointerConfig | None = None,
        turn: TurnConfig | None = None,
        turn_model: SmartTurn | None = None,
    ) -> None:
        super().__init__(call, bus)
        self.recognizer = recognizer
        self.turn = turn or TurnConfig()
        self.turn_model = turn_model if turn_model is not None and turn_model.loaded and self.turn.model else None
        self.endpointer = Endpointer(config, end_policy=self._end_policy)
        self.outbox = Outbox(bus, call.call_id)
        self.hints = CallHints.from_custom(call.custom)  # the recognizer's prompt: keyterms, last lines
        self.stats = SessionStats()
        self._utterance: Utterance | None = None
        self._lock = asyncio.Lock()  # one writer of the endpointer at a time: frames or an early result
        self._tasks: set[asyncio.Task[Any]] = set()
        self._last_finish: asyncio.Task[None] | None = None
        self._last_seq = -1
        self._ended = False

    @property
    def deciding(self) -> bool:
        """An early decode or the end-of-turn model is in flight and the end of the turn waits on it."""
        utterance = self._utterance
        return bool(utterance and any(task is not None and not task.done()
                                      for task in (utterance.early, utterance.judging)))

    async def start(self) -> None:
        await self.bus.subscribe(subjects.control(self.call_id), self.on_control)
        await self.bus.subscribe(subjects.reply(self.call_id), self.on_reply)
        await subscribe_frames(self.bus, subjects.audio_in(self.call_id), AudioFrame, self.on_frame)

    async def close(self, reason: str) -> None:
        await self._stop_work(reason)

    async def on_reply(self, chunk: ReplyChunk) -> None:
        """The agent's words: the recognizer's prompt for what the caller says next."""
        self.hints.agent_said(chunk.turn_id, chunk.text)

    async def on_control(self, control: Control) -> None:
        if control.action == "ended":  # the caller hung up: nothing said from here on matters
            await self._stop_work(control.reason or "call ended")

    async def _stop_work(self, reason: str) -> None:
        """Cancel every decode (a queued one never runs) and forget the utterance in progress."""
        self._ended = True
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
        if self._ended:
            return
        try:
            async with self._lock:
                await self._handle(self._feed(frame))
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

    async def _handle(self, events: list[VadEvent]) -> None:
        for event in events:
            if event.kind == "started":
                await self._started(event)
                continue
            utterance = self._utterance
            if utterance is None:  # pragma: no cover - the endpointer always starts first
                continue
            if event.kind == "continuing":
                await self.outbox.speech(utterance, "continuing", event.at, event.voiced_ms)
            elif event.kind == "paused" and event.audio is not None:
                self._drop_early(utterance)
                utterance.early_at = event.at
                utterance.early = self._spawn(self._early(utterance, event.audio, event.at), "early-decode")
                self.stats.early_started += 1
                self._judge_later(utterance, event.audio, event.at)
            elif event.kind == "resumed":
                self._drop_judgement(utterance)
                if self._drop_early(utterance):
                    self.stats.early_discarded += 1
            elif event.kind == "stopped":
                await self._stopped(utterance, event)

    def _end_policy(self, silence_ms: float) -> str | None:
        """The endpointer asks on every silent frame (and `check()` after an early result)."""
        utterance = self._utterance
        verdict = utterance.verdict if utterance else None
        pending = bool(utterance and utterance.early is not None and utterance.verdict is None)
        model = utterance.model if utterance else None
        judging = bool(utterance and utterance.judging is not None and utterance.model is None)
        return end_reason(silence_ms, verdict, pending, self.turn, model, judging)

    async def _started(self, event: VadEvent) -> None:
        utterance_id = f"u-{uuid.uuid4().hex[:12]}"
        span = _tracer.start_span(
            "stt.utterance",
            context=self.trace_context,  # the call's trace, from calls.start
            start_time=seconds_to_ns(event.at),
            attributes={"call.id": self.call_id, "stt.utterance_id": utterance_id},
        )
        self._utterance = Utterance(utterance_id, event.at, span)
        self.stats.utterances += 1
        await self.outbox.speech(self._utterance, "started", event.at, event.voiced_ms)

    # -- early (interim) decode ---------------------------------------------------------------

    async def _early(self, utterance: Utterance, audio: np.ndarray, voiced_end: float) -> RecognitionResult:
        """Decode what was said so far; if it is still all that was said, publish it as an
        interim transcript and let its text decide the end of the turn."""
        result = await self.recognizer.transcribe(audio, self.hints.now())
        async with self._lock:
            if self._utterance is not utterance or utterance.early_at != voiced_end:
                return result  # the caller went on (stale), or the turn already ended with it
            utterance.verdict = UNKNOWN if result.empty else text_verdict(result.text)
            events = self.endpointer.check()
            if not result.empty:
                utterance.interim = result.text
                self.stats.interims += 1
                await self.outbox.interim(utterance, result, voiced_end)
            await self._handle(events)
        return result

    # -- the end-of-turn model ----------------------------------------------------------------

    def _judge_later(self, utterance: Utterance, audio: np.ndarray, voiced_end: float) -> None:
        if self.turn_model is None:
            return
        self._drop_judgement(utterance)
        utterance.judged_at = voiced_end
        utterance.judging = self._spawn(self._judge(utterance, audio, voiced_end), "turn-model")

    async def _judge(self, utterance: Utterance, audio: np.ndarray, voiced_end: float) -> float:
        """The model's verdict on the voice so far; it decides the end if still current."""
        assert self.turn_model is not None
        try:
            judgement = await asyncio.to_thread(self.turn_model.judge, audio)
        except Exception:
            log.exception("call %s: end-of-turn model failed; text rules decide", self.call_id)
            async with self._lock:
                if self._utterance is utterance and utterance.judged_at == voiced_end:
                    utterance.judging = None
                    await self._handle(self.endpointer.check())
            return -1.0
        async with self._lock:
            if self._utterance is not utterance or utterance.judged_at != voiced_end:
                return judgement.probability  # stale: the caller went on, or the turn ended
            utterance.probability = judgement.probability
            utterance.model = self.turn.model_verdict(judgement.probability)
            self.stats.judged += 1
            log.debug("call %s %s: turn model %.2f (%s) in %.0f ms", self.call_id, utterance.id,
                      judgement.probability, utterance.model, judgement.ms)
            await self._handle(self.endpointer.check())
        return judgement.probability

    def _drop_judgement(self, utterance: Utterance) -> None:
        task, utterance.judging, utterance.judged_at = utterance.judging, None, 0.0
        utterance.model = None
        if task is not None:
            task.cancel()

    def _drop_early(self, utterance: Utterance) -> bool:
        """Forget a speculative decode (a queued one never runs; a running one is ignored)."""
        task, utterance.early, utterance.early_at = utterance.early, None, 0.0
        utterance.verdict = None
        if task is None:
            return False
        task.cancel()
        return True

    # -- end of turn --------------------------------------------------------------------------

    async def _stopped(self, utterance: Utterance, event: VadEvent) -> None:
        self._utterance = None
        if utterance.judging is not None and not utterance.judging.done():
            utterance.judging.cancel()  # too late to matter
        self.stats.end_reasons[event.reason] += 1
        await self.outbox.speech(utterance, "stopped", event.at, event.voiced_ms)
        early = utterance.early if utterance.early_at == event.at else None
        early_used = early is not None
        if early is not None:
            decode = early  # it covered every voiced frame of the utterance
            self.stats.early_used += 1
        else:
            self._drop_early(utterance)
            audio = event.audio if event.audio is not None else np.zeros(0, dtype=np.int16)
            decode = self._spawn(self.recognizer.transcribe(audio, self.hints.now()), "decode")
        previous = self._last_finish
        self._last_finish = self._spawn(
            self._finish(utterance, event, decode, early_used, previous), "transcript"
        )

    async def _finish(
        self,
        utterance: Utterance,
        event: VadEvent,
        decode: asyncio.Task[RecognitionResult],
        early_used: bool,
        previous: asyncio.Task[None] | None,
    ) -> None:
        try:
            result = await decode
            if previous is not None:  # transcripts leave in utterance order
                await asyncio.wait([previous])
            verdict: Verdict | None = utterance.verdict if early_used else None
            self.hints.caller_said(result.text)
            await self.outbox.final(utterance, event, result, early_used, verdict)
        finally:
            utterance.span.end()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = self.bus.spawn(coro, name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
