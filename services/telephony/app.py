"""The telephony edge: FastAPI app factory and `main()`. No I/O at import.

Routes: `POST /twilio/voice` (TwiML), `POST /twilio/action` (a stream ended: reconnect or hang
up, see `failover`), `WS /twilio/stream` (Media Streams), `POST /calls` (outbound calls),
`GET /health` (503 while draining, see `drain`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, Response
from faststream.nats import NatsBroker
from opentelemetry import trace

from ringline.contracts.agents import open_agent_book
from ringline.contracts.runtime import CallAnnouncer, configure_logging, create_broker, setup_telemetry
from ringline.contracts.runtime.metrics import exposition
from ringline.contracts.runtime.service import instrument_edge
from ringline.contracts.runtime.telemetry import shutdown_telemetry

from .busy import BusyLine
from .calls_api import calls_router
from .drain import DrainingServer
from .failover import EndedCalls, action_router
from .limits import BodyLimit
from .outbound import OutboundStore
from .registry import CLOSE_POLICY, CLOSE_TRY_AGAIN, CallRegistry
from .settings import TelephonySettings
from .signature import SignatureChecker
from .stream import CallStream
from .twilio_rest import TwilioCalls
from .twiml import STREAM_PATH, reconnect_twiml, voice_router
from .web import web_router

log = logging.getLogger("ringline.telephony")

BrokerRunner = Callable[[NatsBroker], AbstractAsyncContextManager[object]]


@asynccontextmanager
async def running_broker(broker: NatsBroker) -> AsyncIterator[NatsBroker]:
    """Default broker lifetime: connect on startup, drain on shutdown."""
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def _render_all(lines: list[BusyLine]) -> None:
    for line in lines:  # one after another: one core's worth of Piper at start-up
        await line.render()


def create_app(
    settings: TelephonySettings,
    *,
    broker: NatsBroker | None = None,
    run_broker: BrokerRunner = running_broker,
) -> FastAPI:
    """Build the edge. Tests pass their own `broker` and `run_broker=TestNatsBroker`."""
    broker = broker or create_broker(settings, "telephony")
    checker = SignatureChecker(settings)
    registry = CallRegistry(CallAnnouncer(broker))
    busy_line = registry.busy_line = BusyLine(settings.busy_line)
    hold_lines = registry.hold_lines = (BusyLine(settings.hold_line), BusyLine(settings.hold_sorry_line))
    twilio = TwilioCalls.from_settings(settings)
    agents = open_agent_book(settings.agents_file)
    outbound = OutboundStore(broker, settings.outbound_bucket, settings.outbound_ttl_s)
    ended = EndedCalls(broker, settings.ended_bucket, settings.ended_ttl_s)

    loop_probe = instrument_edge(broker, "telephony", lambda: len(registry.calls))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        checker.warn_if_unverified()
        if twilio is None:
            log.info("TWILIO_ACCOUNT_SID/TWILIO_AUTH_TOKEN not both set: an agent hang-up or transfer only "
                     "closes the stream, and no outbound call can be placed")
        async with run_broker(broker):
            log.info("telephony edge up: public URL %s", settings.base_url)
            loop_probe.start()
            # ... and the prompts of the agents that take a message when busy (a file reloaded
            # later renders its new lines at the first busy call, in about a second).
            lines = [busy_line, *hold_lines, *(registry.message_lines.line(text) for agent in agents.book.agents
                                               if agent.voicemail.when_busy
                                               for text in (agent.voicemail.prompt, agent.voicemail.goodbye))]
            rendering = asyncio.create_task(_render_all(lines), name="telephony:busy-line")
            try:
                yield
            finally:
                await loop_probe.stop()
                rendering.cancel()
                # Close live calls while the bus is still there, so each one publishes CallEnd.
                await registry.shutdown(timeout=settings.drain_timeout_s)
        await _flush_spans()

    app = FastAPI(title="Ringline telephony", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.broker = broker
    app.state.registry = registry
    app.state.settings = settings
    app.state.stream_tokens = checker.tokens  # what the TwiML hands out, for simulated Twilio in tests
    app.include_router(voice_router(settings, checker, agents, outbound))
    app.include_router(calls_router(settings, agents, outbound, twilio))
    app.include_router(web_router(settings, broker, registry, agents))  # /phone, /dashboard
    app.include_router(action_router(settings, checker, ended,
                                     lambda form, agent, call_id: reconnect_twiml(checker, form, agent, call_id)))

    @app.websocket(STREAM_PATH)
    async def stream(ws: WebSocket) -> None:
        await ws.accept()
        if not checker.check_websocket(STREAM_PATH, ws.url.query, ws.headers):
            await ws.close(code=CLOSE_POLICY, reason="invalid Twilio signature")
            return
        if len(registry.streams) >= settings.max_streams:
            log.warning("refused a stream: %d streams already open (max_streams)", len(registry.streams))
            await ws.close(code=CLOSE_TRY_AGAIN, reason="edge at capacity")
            return
        await CallStream(ws, broker, settings, registry, twilio, agents, ended, tokens=checker.tokens).run()

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        body, content_type = exposition()
        return Response(body, media_type=content_type)

    @app.get("/health", include_in_schema=False)
    async def health(probe: str = "") -> JSONResponse:
        """503 while draining (a load balancer stops sending calls); `?probe=live` (liveness)
        still answers 200 then: a draining edge is alive."""
        try:
            ok = await broker.ping(timeout=2.0)
        except Exception:
            ok = False
        status = "draining" if registry.draining else "ok" if ok else "nats unreachable"
        body = {"status": status, "service": "telephony", "replica": settings.replica_id,
                "active_calls": len(registry.calls)}
        alive = status == "ok" or (probe == "live" and registry.draining and ok)
        return JSONResponse(body, status_code=200 if alive else 503)

    app.add_middleware(BodyLimit, limit=settings.max_webhook_bytes)
    return app


async def _flush_spans() -> None:
    """Export the last spans (each call's `call` span ends with the call) before the process goes:
    uvicorn re-raises SIGTERM once the lifespan is over, so `main`'s own `finally` may never run."""
    flush = getattr(trace.get_tracer_provider(), "force_flush", None)
    if flush is not None:
        await asyncio.to_thread(flush, 3000)


def main() -> None:
    import uvicorn

    settings = TelephonySettings()
    configure_logging("telephony", settings.log_level)
    exposed = settings.exposed_without_twilio_token()
    if exposed is not None:  # fail closed: anyone could open calls and streams on it
        log.error("refusing to start: %s and TWILIO_AUTH_TOKEN is not set, so Twilio's signatures could not be "
                  "checked. Set TWILIO_AUTH_TOKEN (the Twilio account's auth token).", exposed)
        raise SystemExit(2)
    setup_telemetry("telephony", settings.otlp_endpoint)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_message_bytes,
        log_level=settings.log_level.lower(),
        access_log=False,
        log_config=None,  # keep the one log format set by configure_logging
        timeout_graceful_shutdown=int(settings.drain_timeout_s),
        lifespan="on",
    )
    try:
        DrainingServer(config, app.state.registry, settings.drain_deadline_s).run()
    except KeyboardInterrupt:  # uvicorn raises SIGINT again once it has shut down
        pass
    finally:
        shutdown_telemetry()
