"""The stt service: claims calls, runs VAD + recognition per call. No I/O at import."""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from faststream.asgi import AsgiFastStream
from faststream.nats import NatsBroker

from ringline.contracts.messages import CallStart
from ringline.contracts.runtime import (
    CallBus,
    CallRouter,
    configure_logging,
    create_broker,
    serve,
    service_app,
    setup_telemetry,
)

from .cloud import DeepgramSession, build_cloud
from .recognizer import Recognizer, build_recognizer
from .session import SttSession
from .settings import SttSettings, call_configs
from .smart_turn import SmartTurn

SERVICE = "stt"


@dataclass(frozen=True)
class SttService:
    broker: NatsBroker
    recognizer: Recognizer
    router: CallRouter
    app: AsgiFastStream
    turn_model: SmartTurn | None = None


def create_app(settings: SttSettings) -> AsgiFastStream:
    return build_service(settings).app


def build_service(settings: SttSettings, recognizer: Recognizer | None = None) -> SttService:
    """Build the broker, the recognizer and the end-of-turn model (loaded on startup) and the
    call router.

    `recognizer` lets tests inject their own; by default `build_recognizer(settings)` picks one.
    With `settings.use_deepgram` calls go to Deepgram's live stream, the recognizer as fallback.
    The end-of-turn model is loaded when its file is there; `turn_model` (the service's default)
    or an agent's `turn_taking.turn_model` switches it on per call. A missing model file leaves
    every call to the text rules (a warning when the service asked for the model).
    """
    broker = create_broker(settings, SERVICE)
    provider = recognizer or build_recognizer(settings)
    config = settings.endpointer_config()
    turn = settings.turn_config()

    cloud = build_cloud(settings) if settings.use_deepgram else None
    turn_model = SmartTurn(settings.turn_model_path)

    def session(call: CallStart, bus: CallBus) -> SttSession:
        endpointing, turn_taking = call_configs(config, turn, call.custom, call.call_id)  # the agent's timing
        if cloud is not None:  # Deepgram live, the local path as its in-call fallback
            return DeepgramSession(call, bus, provider, cloud, endpointing, turn_taking, turn_model)
        return SttSession(call, bus, provider, endpointing, turn_taking, turn_model)

    router = CallRouter(broker, SERVICE, session, settings)

    async def load_recognizer() -> None:
        await provider.load()
        # Loaded even when off by default: an agent may turn it on for its calls.
        await asyncio.to_thread(turn_model.load, settings.turn_model)

    async def close_recognizer() -> None:
        await provider.close()
        if cloud is not None:
            await cloud.close()

    app = service_app(
        broker,
        SERVICE,
        on_startup=[load_recognizer],
        on_shutdown=[close_recognizer],
        routers=[router],
    )
    return SttService(broker, provider, router, app, turn_model)


def main() -> None:
    # With more than one local model on a box, idle OpenMP threads must not spin (OFFLINE-STACK.md).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = SttSettings()
    configure_logging(SERVICE, settings.log_level)
    setup_telemetry(SERVICE, settings.otlp_endpoint)
    serve(create_app(settings), settings)
