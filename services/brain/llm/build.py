"""The one provider switch: settings -> the chat model the brain streams from.

One link is that model itself; more become a `FallbackChatModel` with the routing rule and the
first-token budgets of `BrainSettings` (the arithmetic behind them is in `settings`).
"""

from __future__ import annotations

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


def _link(settings: BrainSettings, name: str) -> Link:
    if name == "anthropic-strong":
        return Link(name, _claude(settings, settings.anthropic_strong_model),
                    settings.anthropic_first_token_timeout_s, budget=CLAUDE_BUDGET, strong=True)
    if name == "anthropic":
        return Link(name, _claude(settings, settings.anthropic_model),
                    settings.anthropic_first_token_timeout_s, budget=CLAUDE_BUDGET)
    if name == "local":
        return Link(name, _local(settings), settings.local_first_token_timeout_s)
    raise ValueError(f"unknown chain link {name!r}")


def routing_rule(settings: BrainSettings) -> RoutingRule:
    return RoutingRule(mode=settings.strong_route, min_words=settings.strong_min_words,
                       keywords=tuple(settings.strong_keywords))


def build_chat_model(settings: BrainSettings) -> ChatModel:
    """Nothing is loaded here (that is `load`, at start-up)."""
    names = settings.resolved_chain
    if len(names) == 1:
        only = _link(settings, names[0])
        return only.model
    return FallbackChatModel([_link(settings, name) for name in names], routing_rule(settings))
