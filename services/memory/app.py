"""Memory service: durable call records and the `memory.*` request/reply API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.messages import (
    CallGetReply,
    CallGetRequest,
    CallListRequest,
    CallSummary,
    SpendReply,
    SpendRequest,
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

from .recall import CallerMemories
from .session import MemorySession
from .settings import MemorySettings
from .store import CallStore, SpendStore


class MemoryService:
    def __init__(self, settings: MemorySettings) -> None:
        self.settings = settings
        self.broker = create_broker(settings, "memory")
        self.store: CallStore | None = None
        self.spend: SpendStore | None = None
        overrides = json.loads(settings.prices_json) if settings.prices_json else None
        self.prices = load_prices(path=settings.prices_file, env={}, overrides=overrides)
        self.router = CallRouter(self.broker, "memory", self._session)
        self.broker.subscriber(subjects.MEMORY_CALLS_LIST, queue="memory")(self.list_calls)
        self.broker.subscriber(subjects.MEMORY_CALLS_GET, queue="memory")(self.get_call)
        self.broker.subscriber(subjects.MEMORY_SPEND_GET, queue="memory")(self.get_spend)
        self.recall = CallerMemories(self.broker, settings.kv_replicas)  # memory.recall.*

    async def open_store(self) -> None:
        # Connect before the subscribers start, so no call can arrive before the bucket is open.
        await self.broker.connect()
        self.store = await CallStore.open(self.broker, self.settings.calls_bucket, self.settings.kv_replicas)
        self.spend = await SpendStore.open(self.broker, self.settings.spend_bucket, self.settings.kv_replicas)
        await self.recall.open()

    def _session(self, call: Any, bus: Any) -> MemorySession:
        assert self.store is not None, "store is opened on startup"
        assert self.spend is not None
        return MemorySession(call, bus, self.store, self.spend, self.prices, self.settings.max_events_per_call)

    async def list_calls(self, request: CallListRequest) -> list[CallSummary]:
        assert self.store is not None
        return await self.store.list(request.limit)

    async def get_call(self, request: CallGetRequest) -> CallGetReply:
        assert self.store is not None
        record = await self.store.get(request.call_id)
        return CallGetReply(found=record is not None, record=record)


    async def get_spend(self, request: SpendRequest) -> SpendReply:
        assert self.spend is not None
        day = request.day or datetime.now(UTC).strftime("%Y-%m-%d")
        spent = await self.spend.get(request.agent_id, day)
        return SpendReply(agent_id=request.agent_id, day=day, spent=spent, currency=self.prices.currency)


def create_app(settings: MemorySettings) -> Any:
    service = MemoryService(settings)
    return service_app(
        service.broker,
        "memory",
        on_startup=[service.open_store],
        on_shutdown=[service.router.drain],
    )


def main() -> None:
    settings = MemorySettings()
    configure_logging("memory", settings.log_level)
    setup_telemetry("memory", settings.otlp_endpoint)
    serve(create_app(settings), settings)
