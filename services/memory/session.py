"""The memory stage's view of one call: record every turn and save it as it completes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from ringline.contracts import subjects
from ringline.contracts.messages import CallEvent, CallStart, ReplyChunk, Transcript
from ringline.contracts.runtime import CallBus, CallSession

from .recorder import CallRecorder
from ringline.contracts.pricing import PriceTable

from .store import CallStore, SpendStore

log = logging.getLogger("ringline.memory")


class MemorySession(CallSession):
    def __init__(self, call: CallStart, bus: CallBus, store: CallStore, spend: SpendStore,
                 prices: PriceTable, max_events: int) -> None:
        super().__init__(call, bus)
        self.store = store
        self.spend = spend
        self.recorder = CallRecorder(call, max_events, prices)

    async def start(self) -> None:
        await self.bus.subscribe(subjects.transcript(self.call_id), self.on_transcript)
        await self.bus.subscribe(subjects.reply(self.call_id), self.on_reply)
        await self.bus.subscribe(subjects.event(self.call_id), self.on_event)
        await self.save()

    async def on_transcript(self, transcript: Transcript) -> None:
        if self.recorder.on_transcript(transcript):
            await self.save()

    async def on_reply(self, chunk: ReplyChunk) -> None:
        if self.recorder.on_reply(chunk):
            await self.save()

    async def on_event(self, event: CallEvent) -> None:
        if self.recorder.on_event(event):
            await self.save()

    async def close(self, reason: str) -> None:
        self.recorder.on_end(reason)
        await self.save()
        total = float(self.recorder.record.cost.get("total", 0.0))
        if total > 0:
            day = datetime.fromtimestamp(self.call.started_at, UTC).strftime("%Y-%m-%d")
            try:
                await self.spend.add(self.call.agent_id, day, total)
            except Exception:
                log.exception("adding the cost of call %s to the daily spend failed", self.call_id)

    async def save(self) -> None:
        try:
            await self.store.put(self.recorder.record)
        except Exception:
            # The record stays in memory and is written again with the next change.
            log.exception("saving the record of call %s failed", self.call_id)
