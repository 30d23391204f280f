"""Retention: call records, voicemail and call recordings older than `retention_days` go.

A sweep (on start-up, then every `retention_sweep_s`) deletes each record whose call ended (or,
never ended, began) before the cut-off, with its voicemail and recording audio. Caller memory
(`memory.recall.*`) is not touched: a caller asks for it to be forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .audio_store import AudioStore, recording_key, voicemail_key
from .store import CallStore

log = logging.getLogger("ringline.memory.retention")


class Retention:
    def __init__(self, store: CallStore, audio: AudioStore | None, max_age_s: float) -> None:
        self.store = store
        self.audio = audio
        self.max_age_s = max_age_s

    async def sweep(self, now: float | None = None) -> int:
        """Delete what is past retention; the number of calls deleted."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        gone = 0
        for record in await self.store.records():
            if (record.ended_at or record.started_at) >= cutoff:
                continue
            await self.store.kv.purge(record.call_id)
            if self.audio is not None:
                for key in (voicemail_key(record.call_id), recording_key(record.call_id)):
                    try:
                        await self.audio.store.delete(key)
                    except Exception:  # no such audio: most calls have none
                        log.debug("no %s to delete", key)
            gone += 1
        if gone:
            log.info("retention: deleted %d calls older than %.1f days", gone, self.max_age_s / 86400)
        return gone

    async def run(self, every_s: float) -> None:
        while True:
            try:
                await self.sweep()
            except Exception as exc:  # the bucket is briefly unreachable: try again next time
                log.warning("retention sweep failed: %r", exc)
            await asyncio.sleep(every_s)
