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

from . import metrics
from .load import LoadGauge
from .reporter import MetricsReporter
from .router import CallRouter
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


def metrics_route() -> Any:
    @get(include_in_schema=False)
    async def metrics_endpoint(scope: Any) -> AsgiResponse:
        body, content_type = metrics.exposition()
        return AsgiResponse(body, 200, headers={"content-type": content_type})

    return metrics_endpoint


def instrument(broker: NatsBroker, service: str, routers: Sequence[CallRouter]) -> LoadGauge | None:
    """Metrics of one service: its stage's events (`MetricsReporter`), NATS reconnects, and from
    its call routers the calls it owns, its load and its event-loop lag. A service without a
    router gets a probe of its loop back (start it with the app)."""
    if not routers:
        return instrument_edge(broker, service, lambda: 0)
    MetricsReporter(service).subscribe(broker)
    metrics.watch_nats(service, broker)
    for router in routers:
        metrics.watch_load(router.stage, router.gauge, _session_count(router))
    return None


def _session_count(router: CallRouter) -> Callable[[], int]:
    return lambda: len(router.sessions)


def instrument_edge(broker: NatsBroker, service: str, active_calls: Callable[[], int]) -> LoadGauge:
    """`instrument` for a service that claims no calls through a router (the telephony edge):
    `active_calls` counts its calls; the returned probe measures its loop once started."""
    MetricsReporter(service).subscribe(broker)
    metrics.watch_nats(service, broker)
    probe = LoadGauge(max_calls=1_000_000, max_loop_lag_s=1.0)
    metrics.watch_load(service, probe, active_calls)
    return probe


def service_app(
    broker: NatsBroker,
    service: str,
    on_shutdown: Sequence[Callable[[], Awaitable[Any]]] = (),
    on_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    after_startup: Sequence[Callable[[], Awaitable[Any]]] = (),
    routers: Sequence[CallRouter] = (),
) -> AsgiFastStream:
    """`on_startup` runs before the broker connects (load models there); `after_startup`
    runs once it is connected (open JetStream buckets there). Each call router starts claiming
    once the broker is connected and drains first on shutdown. `/metrics` serves Prometheus."""
    probe = instrument(broker, service, routers)

    async def _start_probe() -> None:
        if probe is not None:
            probe.start()

    async def _flush() -> None:
        if probe is not None:
            await probe.stop()
        shutdown_telemetry()

    return AsgiFastStream(
        broker,
        asgi_routes=[("/health", health_route(broker, service)), ("/metrics", metrics_route())],
        on_startup=[*on_startup, _start_probe],
        after_startup=[*after_startup, *(router.start for router in routers)],
        on_shutdown=[*(router.drain for router in routers), *on_shutdown, _flush],
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
