"""The brain service: claims calls, and per call runs a `BrainSession` with its agent's settings.

Agents that share the same provider chain share one chat model (the local model is loaded
once, at start-up); each agent's webhook tools share one HTTP client. After a call, its summary
and the caller's memory are made by app-level jobs (`AfterCalls`), drained on shutdown.

`create_app(settings)` only wires things up; the model loads in `on_startup` (weights are
joined and verified there, never at import). `python -m ringline.services.brain` runs it.
"""

from __future__ import annotations

from faststream.asgi import AsgiFastStream

from ringline.contracts.agents import open_agent_book
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

from .aftercall import AfterCalls
from .agents import agent_settings, model_key
from .llm.base import ChatModel, build_chat_model
from .session import BrainSession
from .settings import BrainSettings
from .tools import ToolBox

SERVICE = "brain"


def create_app(settings: BrainSettings, model: ChatModel | None = None) -> AsgiFastStream:
    """The ASGI app (FastStream broker + /health). Pass `model` to use a ready-made one (tests)."""
    broker = create_broker(settings, SERVICE)
    book = open_agent_book(settings.agents_file)
    shared: dict[str, ChatModel] = {}
    chat_model = model if model is not None else build_chat_model(settings, shared)
    models: dict[tuple[object, ...], ChatModel] = {model_key(settings): chat_model}
    toolboxes: dict[str, ToolBox] = {}
    after_calls = AfterCalls(broker)

    async def model_for(call_settings: BrainSettings) -> ChatModel:
        key = model_key(call_settings)
        if model is not None:
            return chat_model
        if key not in models:
            built = build_chat_model(call_settings, shared)
            await built.load()
            models[key] = built
        return models[key]

    def toolbox_for(agent_id: str, call_settings: BrainSettings) -> ToolBox:
        box = toolboxes.get(agent_id)
        if box is None or [t.name for t in box.tools.values()] != [t.name for t in call_settings.tools]:
            box = toolboxes[agent_id] = ToolBox(call_settings.tools)
        return box

    async def factory(call: CallStart, bus: CallBus) -> BrainSession:
        agent = book.book.agent(call.agent_id)
        call_settings = agent_settings(settings, agent, call)
        return BrainSession(call, bus, call_settings, await model_for(call_settings),
                            toolbox_for(agent.id, call_settings), agent=agent, after_call=after_calls.add)

    async def finish_after_calls() -> None:
        await after_calls.drain(settings.drain_timeout_s)

    async def close_all() -> None:
        for box in toolboxes.values():
            await box.aclose()
        for each in {id(m): m for m in [*models.values(), *shared.values()]}.values():
            await each.aclose()

    async def load_models() -> None:
        await chat_model.load()
        for agent in book.book.agents:  # every agent's chain ready before its first call
            await model_for(agent_settings(settings, agent))

    router = CallRouter(broker, SERVICE, factory, settings)
    return service_app(
        broker,
        SERVICE,
        on_startup=[load_models],
        on_shutdown=[finish_after_calls, close_all],
        routers=[router],
    )


def main() -> None:
    settings = BrainSettings()
    configure_logging(SERVICE, settings.log_level)
    setup_telemetry(SERVICE, settings.otlp_endpoint)
    serve(create_app(settings), settings)
