"""Memory service: durable call records and the `memory.*` request/reply API."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from ringline.contracts import subjects
from ringline.contracts.agents import Agent, WatchedAgentBook
from ringline.contracts.messages import (
    CallGetReply,
    CallGetRequest,
    CallListRequest,
    CallSummary,
    SpendReply,
    SpendRequest,
)
from ringline.contracts.messages.voicemail import (
    AudioReply,
    AudioRequest,
    VoicemailListReply,
    VoicemailListRequest,
)
from ringline.contracts.pricing import load_prices
from ringline.contracts.runtime import (
    CallRouter,
    configure_logging,
    create_broker,
    serve,
    service_app,
    setup_telemetry,
)

from .aftercall import AfterCall, report_targets
from .audio_store import AudioStore
from .live import LiveCalls
from .recall import CallerMemories
from .reports import ReportSender, ReportTarget
from .retention import Retention
from .session import MemorySession
from .settings import MemorySettings
from .store import CallStore, SpendStore
from .voicemail import voicemail_list

log = logging.getLogger("ringline.memory")


class MemoryService:
    def __init__(self, settings: MemorySettings, env: Mapping[str, str] | None = None,
                 sender: ReportSender | None = None) -> None:
        self.settings = settings
        self.env = os.environ if env is None else env  # only for the report keys the agents file names
        self.broker = create_broker(settings, "memory")
        self.agents = WatchedAgentBook(settings.agents_file)
        self.store: CallStore | None = None
        self.spend: SpendStore | None = None
        self.live: LiveCalls | None = None
        self.audio: AudioStore | None = None
        self.after_call: AfterCall | None = None
        self._sender = sender
        self._http: httpx.AsyncClient | None = None
        self._retention: asyncio.Task[None] | None = None
        overrides = json.loads(settings.prices_json) if settings.prices_json else None
        self.prices = load_prices(path=settings.prices_file, env={}, overrides=overrides)
        self.router = CallRouter(self.broker, "memory", self._session, settings, closes_ended=True)
        self.broker.subscriber(subjects.MEMORY_CALLS_LIST, queue="memory")(self.list_calls)
        self.broker.subscriber(subjects.MEMORY_CALLS_GET, queue="memory")(self.get_call)
        self.broker.subscriber(subjects.MEMORY_SPEND_GET, queue="memory")(self.get_spend)
        self.broker.subscriber(subjects.MEMORY_VOICEMAIL_LIST, queue="memory")(self.list_voicemail)
        self.broker.subscriber(subjects.MEMORY_VOICEMAIL_GET, queue="memory")(self.get_voicemail)
        self.broker.subscriber(subjects.MEMORY_RECORDING_GET, queue="memory")(self.get_recording)
        self.recall = CallerMemories(self.broker, settings.kv_replicas)  # memory.recall.*

    async def open_store(self) -> None:
        # Connect before the subscribers start, so no call can arrive before the buckets are open.
        s = self.settings
        await self.broker.connect()
        self.store = await CallStore.open(self.broker, s.calls_bucket, s.kv_replicas, redact_pii=s.redact_pii,
                                          mask_callers=s.mask_caller_numbers)
        self.spend = await SpendStore.open(self.broker, s.spend_bucket, s.kv_replicas)
        self.live = await LiveCalls.open(self.broker, s.live_bucket, s.live_ttl_s, s.kv_replicas)
        self.audio = await AudioStore.open(self.broker, s.audio_bucket, s.kv_replicas)
        await self.recall.open()
        if self._sender is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
            self._sender = ReportSender(self._http, s.report_retry_s, s.report_timeout_s)
        self.after_call = AfterCall(self.broker, self.store, self._sender, s.summary_wait_s, self._targets)
        if s.retention_days > 0:  # records, voicemail and recordings older than that go
            retention = Retention(self.store, self.audio, s.retention_days * 86400)
            self._retention = asyncio.create_task(retention.run(s.retention_sweep_s), name="memory:retention")

    async def shutdown(self) -> None:
        """SIGTERM: close every owned call, finish the call reports in flight, then let go."""
        if self._retention is not None:
            self._retention.cancel()
        await self.router.drain()
        if self.after_call is not None:
            await self.after_call.drain(self.settings.drain_timeout_s)
        if self._http is not None:
            await self._http.aclose()

    def _targets(self, agent: Agent) -> list[ReportTarget]:
        secret = self.settings.report_secret.get_secret_value() if self.settings.report_secret else None
        return report_targets(agent, self.settings.report_url_list, secret, self.env)

    def _session(self, call: Any, bus: Any) -> MemorySession:
        assert self.store is not None and self.spend is not None, "stores are opened on startup"
        return MemorySession(call, bus, self.store, self.spend, self.prices, self.settings.max_events_per_call,
                             agent=self.agents.book.agent(call.agent_id), live=self.live, audio=self.audio,
                             after_call=self.after_call)

    async def list_calls(self, request: CallListRequest) -> list[CallSummary]:
        assert self.store is not None
        return await self.store.list(request)

    async def get_call(self, request: CallGetRequest) -> CallGetReply:
        assert self.store is not None
        record = await self.store.get(request.call_id)
        return CallGetReply(found=record is not None, record=record)

    async def get_spend(self, request: SpendRequest) -> SpendReply:
        assert self.spend is not None and self.live is not None
        day = request.day or datetime.now(UTC).strftime("%Y-%m-%d")
        spent = await self.spend.get(request.agent_id, day)
        try:
            active: int | None = await self.live.count(request.agent_id, exclude_call=request.call_id)
        except Exception as exc:  # unknown never sends a call away
            log.warning("counting the live calls of agent %s failed: %s", request.agent_id, exc)
            active = None
        return SpendReply(agent_id=request.agent_id, day=day, spent=spent, currency=self.prices.currency,
                          active_calls=active)

    async def list_voicemail(self, request: VoicemailListRequest) -> VoicemailListReply:
        assert self.store is not None
        return VoicemailListReply(messages=voicemail_list(await self.store.records(), request))

    async def get_voicemail(self, request: AudioRequest) -> AudioReply:
        assert self.store is not None
        record = await self.store.get(request.call_id)
        if record is None or record.voicemail is None:
            return AudioReply(found=False, error=f"no voicemail on call {request.call_id}")
        if not record.voicemail.audio_key:
            return AudioReply(found=False, error=f"the voicemail of call {request.call_id} has no audio")
        return await self._audio(record.voicemail.audio_key, 1, request)

    async def get_recording(self, request: AudioRequest) -> AudioReply:
        assert self.store is not None
        record = await self.store.get(request.call_id)
        if record is None or record.recording is None:
            return AudioReply(found=False, error=f"call {request.call_id} was not recorded")
        return await self._audio(record.recording.audio_key, record.recording.channels, request)

    async def _audio(self, key: str, channels: int, request: AudioRequest) -> AudioReply:
        assert self.audio is not None
        wav = await self.audio.wav(key, channels)
        if wav is None:
            return AudioReply(found=False, error=f"audio {key} is missing from the store")
        piece = wav[request.offset:request.offset + request.max_bytes]
        return AudioReply(found=True, total_bytes=len(wav), offset=request.offset, data=piece, channels=channels)


def create_app(settings: MemorySettings) -> Any:
    service = MemoryService(settings)
    return service_app(
        service.broker,
        "memory",
        on_startup=[service.open_store],
        after_startup=[service.router.start],
        on_shutdown=[service.shutdown],
    )


def main() -> None:
    settings = MemorySettings()
    configure_logging("memory", settings.log_level)
    setup_telemetry("memory", settings.otlp_endpoint)
    serve(create_app(settings), settings)
