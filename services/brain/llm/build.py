"""The one provider switch: settings -> the chat model the brain streams from.

One link is that model itself; more become a `FallbackChatModel` with the routing rule and the
first-token budgets of `BrainSettings` (the arithmetic behind them is in `settings`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import ChatModel
from .fallback import FallbackChatModel, Link
from .routing import RoutingRule

if TYPE_CHECKING:
    from ..settings import BrainSettings

CLAUDE_BUDGET = "anthropic"  # the Claude links share one first-token clock


def _claude(settings: BrainSettings, model: str) -> ChatModel:
    from .claude import ClaudeChatModel

    key = settings.anthropic_api_key
    return ClaudeChatModel(
        api_key=key.get_secret_value() if key is not None else None,
        model=model,
        base_url=settings.anthropic_base_url,
        max_retries=0,  # the chain handles a failure; an SDK retry would only make the caller wait
    )


def _local(settings: BrainSettings) -> ChatModel:
    from .llama import LlamaChatModel

    return LlamaChatModel(
        model_dir=settings.model_dir,
        n_threads=settings.llama_threads,
        n_ctx=settings.n_ctx,
        temperature=settings.temperature,
        # Every call opens with the persona and the greeting: warm exactly that prefix.
        warm_messages=[
            {"role": "system", "content": settings.persona},
            {"role": "assistant", "content": settings.greeting},
        ],
    )


def _link(settings: BrainSettings, name: str, shared: dict[str, ChatModel]) -> Link:
    """One link; its model comes from `shared` when an earlier chain built the same one (agents
    with different chains still load the local model once)."""
    if name == "anthropic-strong":
        model = _shared(shared, f"claude:{settings.anthropic_strong_model}",
                        lambda: _claude(settings, settings.anthropic_strong_model))
        return Link(name, model, settings.anthropic_first_token_timeout_s, budget=CLAUDE_BUDGET, strong=True)
    if name == "anthropic":
        model = _shared(shared, f"claude:{settings.anthropic_model}",
                        lambda: _claude(settings, settings.anthropic_model))
        return Link(name, model, settings.anthropic_first_token_timeout_s, budget=CLAUDE_BUDGET)
    if name == "local":
        return Link(name, _shared(shared, "local", lambda: _local(settings)), settings.local_first_token_timeout_s)
    raise ValueError(f"unknown chain link {name!r}")


def _shared(shared: dict[str, ChatModel], key: str, build: Callable[[], ChatModel]) -> ChatModel:
    if key not in shared:
        shared[key] = build()
    return shared[key]


def routing_rule(settings: BrainSettings) -> RoutingRule:
    return RoutingRule(mode=settings.strong_route, min_words=settings.strong_min_words,
                       keywords=tuple(settings.strong_keywords))


def build_chat_model(settings: BrainSettings, shared: dict[str, ChatModel] | None = None) -> ChatModel:
    """Nothing is loaded here (that is `load`, at start-up). Pass the same `shared` dict to every
    build so models are built once and reused between chains."""
    shared = {} if shared is None else shared
    names = settings.resolved_chain
    if len(names) == 1:
        return _link(settings, names[0], shared).model
    return FallbackChatModel([_link(settings, name, shared) for name in names], routing_rule(settings),
                             recovery_line=settings.recovery_line)
