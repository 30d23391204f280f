"""Retention: with `retention_days` a call's record, voicemail and recording go once the call is
that old; younger calls, and every call without retention, stay."""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.contracts.messages import CallRecord
from ringline.services.memory.audio_store import recording_key, voicemail_key
from ringline.services.memory.retention import Retention

pytestmark = pytest.mark.integration

DAY = 86400.0


async def _old_and_young_calls(service) -> float:
    now = time.time()
    old = CallRecord(call_id="CAold", started_at=now - 40 * DAY, ended_at=now - 40 * DAY + 60)
    young = CallRecord(call_id="CAyoung", started_at=now - 2 * DAY, ended_at=now - 2 * DAY + 60)
    for record in (old, young):
        await service.store.put(record)
        await service.audio.put(voicemail_key(record.call_id), b"\xff" * 800)
        await service.audio.put(recording_key(record.call_id), b"\xff" * 800)
    return now


async def test_calls_past_retention_go_with_their_audio(memory) -> None:
    service = await memory()  # no sweeper of its own: this test's sweep is the only one
    now = await _old_and_young_calls(service)

    assert await Retention(service.store, service.audio, 30 * DAY).sweep(now) == 1
    assert await service.store.get("CAold") is None
    assert await service.audio.wav(voicemail_key("CAold")) is None
    assert await service.audio.wav(recording_key("CAold")) is None
    assert await service.store.get("CAyoung") is not None
    assert await service.audio.wav(voicemail_key("CAyoung")) is not None


async def test_the_service_sweeps_on_its_own_with_retention_set(memory) -> None:
    service = await memory(retention_days=30, retention_sweep_s=0.1)
    await _old_and_young_calls(service)
    for _ in range(100):
        if await service.store.get("CAold") is None:
            break
        await asyncio.sleep(0.05)
    assert await service.store.get("CAold") is None, "the call past retention is still kept"
    assert await service.audio.wav(recording_key("CAold")) is None
    assert await service.store.get("CAyoung") is not None


async def test_without_retention_nothing_is_swept(memory) -> None:
    service = await memory()
    assert service._retention is None
    await service.store.put(CallRecord(call_id="CAancient", started_at=1.0, ended_at=2.0))
    assert await service.store.get("CAancient") is not None
