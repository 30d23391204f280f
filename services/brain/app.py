"""The brain service: claims calls, and per call runs a `BrainSession` on one shared chat model.

`create_app(settings)` only wires things up; the model loads in `on_startup` (weights are
joined and verified there, never at import). `python -m ringline.services.brain` runs it.
"""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

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

from .llm.base import ChatModel, build_chat_model
from .session import BrainSession
from .settings import BrainSettings
from .tools import ToolBox

SERVICE = "brain"


def create_app(settings: BrainSettings, model: ChatModel | None = None) -> AsgiFastStream:
    """The ASGI app (FastStream broker + /health). Pass `model` to use a ready-made one (tests)."""
    broker = create_broker(settings, SERVICE)
    chat_model = model if model is not None else build_chat_model(settings)
    toolbox = ToolBox(settings.tools)

    def factory(call: CallStart, bus: CallBus) -> BrainSession:
        return BrainSession(call, bus, settings, chat_model, toolbox)

    router = CallRouter(broker, SERVICE, factory)
    return service_app(
        broker,
        SERVICE,
        on_startup=[chat_model.load],
        on_shutdown=[router.drain, toolbox.aclose, chat_model.aclose],
    )


def main() -> None:
    settings = BrainSettings()
    configure_logging(SERVICE, settings.log_level)
    setup_telemetry(SERVICE, settings.otlp_endpoint)
    serve(create_app(settings), settings)
