"""The TTS service: claims calls, turns each call's reply chunks into phone audio.

`create_app(settings)` wires broker, provider chain and call router without any I/O; the app's
startup hook, before the broker starts taking calls, loads the Piper voice (warmed with one short
sentence), opens the Cartesia connection when Cartesia is configured, and renders the apology
line. `python -m ringline.services.tts` runs it.
"""

from __future__ import annotations

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

from .provider import Synthesizer, build_synthesizer
from .session import TtsSession
from .settings import TtsSettings

SERVICE = "tts"


@dataclass
class TtsService:
    """The parts of a running TTS service; tests drive these directly on the in-memory broker."""

    settings: TtsSettings
    broker: NatsBroker
    synthesizer: Synthesizer
    router: CallRouter

    async def startup(self) -> None:
        await self.synthesizer.start()

    async def shutdown(self) -> None:
        await self.synthesizer.aclose()


def build_service(settings: TtsSettings, synthesizer: Synthesizer | None = None) -> TtsService:
    broker = create_broker(settings, SERVICE)
    synth = synthesizer if synthesizer is not None else build_synthesizer(settings)

    def new_session(call: CallStart, bus: CallBus) -> TtsSession:
        return TtsSession(call, bus, synth, settings)

    router = CallRouter(broker, SERVICE, new_session, settings)
    return TtsService(settings=settings, broker=broker, synthesizer=synth, router=router)


def create_app(settings: TtsSettings, synthesizer: Synthesizer | None = None) -> AsgiFastStream:
    service = build_service(settings, synthesizer)
    return service_app(
        service.broker,
        SERVICE,
        on_startup=[service.startup],
        on_shutdown=[service.shutdown],
        routers=[service.router],
    )


def main() -> None:
    settings = TtsSettings()
    configure_logging(SERVICE, settings.log_level)
    setup_telemetry(SERVICE, settings.otlp_endpoint)
    serve(create_app(settings), settings)
