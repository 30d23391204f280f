"""Running a service: health endpoint, telemetry, graceful drain on SIGTERM.

A service module exposes `create_app(settings)`; `serve(app, settings)` runs it under uvicorn,
which turns SIGTERM/SIGINT into an orderly shutdown (the broker drains its subscriptions and
each call router closes its sessions).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from faststream.asgi import AsgiFastStream, AsgiResponse, get
from faststream.nats import NatsBroker

from .settings import ServiceSettings
from .telemetry import shutdown_telemetry

log = logging.getLogger("ringline.service")


def health_route(broker: NatsBroker, service: str) -> Any:
    @get(include_in_schema=False)
    async def health(scope: Any) -> AsgiResponse:
        ok = await broker.ping(timeout=2.0)
        body = b'{"status":"ok","service":"%s"}' % service.encode() if ok else b'{"status":"nats unreachable"}'
        return AsgiResponse(body, 200 if ok else 503, headers={"content-type": "application/json"})

    return health


def service_app(
    broker: NatsBroker,
    service: str,
    on_shutdown: Sequence[Callable[[], Awaitable[Any]]] = (),
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    after_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
) -> AsgiFastStream:
    """`on_startup` runs before the broker connects (load models there); `after_startup`
    runs once it is connected (open JetStream buckets there)."""
    async def _flush() -> None:
        shutdown_telemetry()

    return AsgiFastStream(
        broker,
        asgi_routes=[("/health", health_route(broker, service))],
        on_startup=list(on_startup),
        after_startup=list(after_startup),
        on_shutdown=[*on_shutdown, _flush],
    )


def serve(app: Any, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        lifespan="on",
    )
    uvicorn.Server(config).run()
