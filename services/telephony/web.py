"""The edge's browser side in one router: the softphone (`/phone`) and the dashboard (`/dashboard`)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from faststream.nats import NatsBroker

from ringline.contracts.agents import WatchedAgentBook

from .dashboard_api import dashboard_router
from .live_feed import LiveFeed
from .memory_client import MemoryClient
from .registry import CallRegistry
from .settings import TelephonySettings
from .web_auth import NO_TOKEN_WHEN_EXPOSED, WebGate
from .web_phone import pages_router, phone_router

log = logging.getLogger("ringline.telephony.web")


def web_router(settings: TelephonySettings, broker: NatsBroker, registry: CallRegistry,
               agents: WatchedAgentBook) -> APIRouter:
    gate = WebGate(settings)
    if gate.disabled:
        log.warning(NO_TOKEN_WHEN_EXPOSED)
    router = APIRouter()
    router.include_router(pages_router())
    router.include_router(phone_router(settings, gate, broker, registry, agents))
    router.include_router(dashboard_router(settings, gate, LiveFeed(broker), MemoryClient(broker),
                                           closing=lambda: registry.draining))
    return router
