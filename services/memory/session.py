"""The memory stage's view of one call: record every turn and save it as it completes; count
the call as live; keep the voicemail's audio (and both sides, for agents with `record_audio`)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context

from ringline.contracts import subjects
from ringline.contracts.agents import Agent
from ringline.contracts.events import VOICEMAIL_MESSAGE, VOICEMAIL_STARTED
from ringline.contracts.messages import (
    AgentAudio,
    AudioFrame,
    CallEvent,
    CallRecord,
    CallStart,
    Control,
    ReplyChunk,
    Transcript,
)
from ringline.contracts.messages.audio import SAMPLE_RATE
from ringline.contracts.messages.records import RecordingRecord
from ringline.contracts.pricing import PriceTable
from ringline.contracts.runtime import CallBus, CallSession

from .audio_store import AudioStore, recording_key, voicemail_key
from .live import LiveCalls
from .recorder import CallRecorder
from .store import CallStore, SpendStore
from .tapes import CallTape, VoicemailTape

log = logging.getLogger("ringline.memory")

VOICEMAIL_SLACK_S = 60.0  # the prompt plays before the message; kept on top of the message's max length
AfterCall = Callable[["MemorySession"], Awaitable[None]]


def trace_id(context: Context | None) -> str:
    """The call's trace id (32 hex digits) from the `calls.start` headers; "" without one."""
    if context is None:
        return ""
    span_context = trace.get_current_span(context).get_span_context()
    return format(span_context.trace_id, "032x") if span_context.is_valid else ""


class MemorySession(CallSession):
    def __init__(self, call: CallStart, bus: CallBus, store: CallStore, spend: SpendStore,
                 prices: PriceTable, max_events: int, agent: Agent | None = None, live: LiveCalls | None = None,
                 audio: AudioStore | None = None, after_call: AfterCall | None = None) -> None:
        super().__init__(call, bus)
        self.store = store
        self.spend = spend
        self.agent = agent or Agent(id="default")
        self.live = live
        self.audio = audio
        self.after_call = after_call
        self.recorder = CallRecorder(call, max_events, prices)
        self.closing = False
        self.after_event: Callable[[CallEvent], Awaitable[None]] | None = None  # set by the after-call watcher
        self.charged = 0.0  # the part of the call's cost already added to the daily spend
        self._t0 = time.monotonic()
        self._audio_in = False
        self._keeping = asyncio.Lock()
        self.voicemail_tape: VoicemailTape | None = None
        self.tape: CallTape | None = CallTape(self.agent.limits.max_call_s + 60) if self.agent.record_audio else None

    def snapshot(self) -> dict[str, Any]:
        """The record as it stands, the agent turn being assembled, and what was charged: a
        replica that takes the call over goes on from here instead of a blank record."""
        return {"record": self.recorder.record.model_dump(mode="json"),
                "chunks": {turn: {str(seq): text for seq, text in parts.items()}
                           for turn, parts in self.recorder.chunks.items()},
                "charged": self.charged}

    def restore(self, state: dict[str, Any]) -> None:
        if isinstance(state.get("record"), dict):
            self.recorder.record = CallRecord.model_validate(state["record"])
        chunks = state.get("chunks") or {}
        self.recorder.chunks = {turn: {int(seq): text for seq, text in parts.items()} for turn, parts in chunks.items()}
        self.charged = float(state.get("charged", 0.0))

    async def start(self) -> None:
        self.recorder.record.trace_id = self.recorder.record.trace_id or trace_id(self.trace_context)
        await self.bus.subscribe(subjects.transcript(self.call_id), self.on_transcript)
        await self.bus.subscribe(subjects.reply(self.call_id), self.on_reply)
        await self.bus.subscribe(subjects.event(self.call_id), self.on_event)
        if self.tape is not None and self.audio is not None:
            await self._listen_to_caller()
            await self.bus.subscribe(subjects.audio_out(self.call_id), self.on_audio_out)
            await self.bus.subscribe(subjects.control(self.call_id), self.on_control)
        if self.live is not None:
            try:
                await self.live.mark(self.call.agent_id, self.call_id, self.call.started_at)
            except Exception:
                log.exception("counting call %s as live failed", self.call_id)
            self.bus.spawn(self.live.keep_alive(self.call.agent_id, self.call_id, self.call.started_at), "live")
        await self.save()

    async def _listen_to_caller(self) -> None:
        if not self._audio_in:
            self._audio_in = True
            await self.bus.subscribe(subjects.audio_in(self.call_id), self.on_audio_in)

    async def on_transcript(self, transcript: Transcript) -> None:
        if not self.closing and self.recorder.on_transcript(transcript):
            await self.save()

    async def on_reply(self, chunk: ReplyChunk) -> None:
        if not self.closing and self.recorder.on_reply(chunk):
            await self.save()

    async def on_event(self, event: CallEvent) -> None:
        if self.closing:  # the after-call watcher has taken over
            if self.after_event is not None:
                await self.after_event(event)
            return
        if event.name == VOICEMAIL_STARTED and self.voicemail_tape is None and self.audio is not None:
            self.voicemail_tape = VoicemailTape(self.agent.voicemail.max_s + VOICEMAIL_SLACK_S)
            await self._listen_to_caller()
        changed = self.recorder.on_event(event)
        if event.name == VOICEMAIL_MESSAGE:
            await self.keep_voicemail_audio()
        if changed:
            await self.save()

    async def on_audio_in(self, frame: AudioFrame) -> None:
        if self.voicemail_tape is not None:
            self.voicemail_tape.add(frame.seq, frame.payload)
        if self.tape is not None:
            self.tape.add_caller(frame.seq, frame.payload, time.monotonic() - self._t0)

    async def on_audio_out(self, piece: AgentAudio) -> None:
        if self.tape is not None:
            self.tape.add_agent(piece.payload, time.monotonic() - self._t0)

    async def on_control(self, control: Control) -> None:
        if self.tape is not None and control.action == "interrupt":
            self.tape.interrupt(time.monotonic() - self._t0)

    async def keep_voicemail_audio(self) -> None:
        """Stop the voicemail tape and store what it holds (once: the message's event and the
        call's end race, and the end must not save the record before the audio is stored)."""
        async with self._keeping:
            await self._keep_voicemail_audio()

    async def _keep_voicemail_audio(self) -> None:
        tape, voicemail = self.voicemail_tape, self.recorder.record.voicemail
        if tape is None or not tape.recording or self.audio is None or voicemail is None:
            return
        tape.stop()
        audio = tape.audio()
        if not audio:
            return
        key = voicemail_key(self.call_id)
        try:
            await self.audio.put(key, audio)
        except Exception:
            log.exception("storing the voicemail audio of call %s failed", self.call_id)
            return
        voicemail.audio_key, voicemail.audio_s = key, round(len(audio) / SAMPLE_RATE, 2)

    async def keep_recording(self) -> None:
        if self.tape is None or self.tape.empty or self.audio is None:
            return
        audio, self.tape = self.tape.audio(), None
        key = recording_key(self.call_id)
        try:
            await self.audio.put(key, audio)
        except Exception:
            log.exception("storing the recording of call %s failed", self.call_id)
            return
        self.recorder.record.recording = RecordingRecord(audio_key=key, channels=2,
                                                         audio_s=round(len(audio) / 2 / SAMPLE_RATE, 2))

    async def close(self, reason: str) -> None:
        self.recorder.on_end(reason)
        await self.keep_voicemail_audio()
        await self.keep_recording()
        await self.save()
        await self.charge()
        if self.live is not None:
            try:
                await self.live.unmark(self.call.agent_id, self.call_id)
            except Exception:  # the entry expires on its own
                log.warning("call %s stays counted as live until its entry expires", self.call_id)
        if self.after_call is not None:
            await self.after_call(self)  # listens for what comes after the call, then sets `closing`
        self.closing = True

    async def charge(self) -> None:
        """Add what the call cost since the last charge to the agent's spend that day (again after
        the call, when the brain's summary brings its own usage)."""
        total = float(self.recorder.record.cost.get("total", 0.0))
        amount, self.charged = total - self.charged, total
        if amount > 0:
            day = datetime.fromtimestamp(self.call.started_at, UTC).strftime("%Y-%m-%d")
            try:
                await self.spend.add(self.call.agent_id, day, amount)
            except Exception:
                log.exception("adding the cost of call %s to the daily spend failed", self.call_id)

    async def save(self) -> None:
        try:
            await self.store.put(self.recorder.record)
        except Exception:
            # The record stays in memory and is written again with the next change.
            log.exception("saving the record of call %s failed", self.call_id)
