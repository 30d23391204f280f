"""The broker factory every service uses: msgpack codec, quiet per-message logs, endless reconnects."""

from __future__ import annotations

import logging

from faststream.nats import NatsBroker

from ..codec import MsgpackCodec
from .settings import ServiceSettings


def create_broker(settings: ServiceSettings, service: str) -> NatsBroker:
    return NatsBroker(
        settings.nats_url,
        name=f"ringline-{service}",
        codec=MsgpackCodec(),
        # FastStream logs every message at this level; 50 audio frames a second belong at DEBUG.
        log_level=logging.DEBUG,
        logger=logging.getLogger(f"ringline.{service}.bus"),
        max_reconnect_attempts=-1,
        reconnect_time_wait=1,
        graceful_timeout=settings.drain_timeout_s,
    )
