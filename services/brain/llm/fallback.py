"""A chain of chat models tried in order within one turn: strong Claude, fast Claude, local model.

`FallbackChatModel` is a `ChatModel`: the turn streams from it as from any model. It tries its
links in order and falls through to the next one on an `LLMError` raised before the first token
(HTTP 429/529/5xx, a connect error, no first token in time). Once a link has produced a token
the caller may already be hearing it, so a later failure is not retried elsewhere (the turn
closes as it always does: never say something twice). When every link fails the chain raises
`LLMError` and the turn speaks its recovery line, the last link of every chain.

First-token budgets. Each link has one; links that name the same `budget` share a single clock
started by the first of them, so a second Claude model gets only what the first one left: a
fast failure (429, 529, 5xx, refused connection: milliseconds) costs nothing, a stall spends the
whole Claude budget and the chain goes on to the local model. The worst case before the caller
hears something is therefore the sum of the budgets (the numbers are in `settings`).

The routing rule (`routing.RoutingRule`) decides per turn whether the `strong` links are tried
at all. The stream's `StreamStats` say which link served (`provider` = the link's name,
`model`), and `extra["fallbacks"]` lists every fall-through as
`{"from", "to", "reason", "ms"}`; `extra["route"]` says why the strong model was (not) used.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from ringline.contracts.pricing import Usage

from .base import Capabilities, ChatModel, LLMError, Messages, StreamStats, ToolCall, ToolSpec
from .routing import Route, RoutingRule, last_caller_text

log = logging.getLogger("ringline.brain.fallback")

RECOVERY = "recovery"  # the name of the chain's last resort: the turn's canned recovery line


@dataclass(frozen=True)
class Link:
    name: str  # "anthropic-strong", "anthropic", "local": what events and traces call it
    model: ChatModel
    first_token_s: float
    budget: str = ""  # links naming the same budget share one first-token clock ("" = its own)
    strong: bool = False  # tried only when the routing rule picks the strong model


def reason_of(exc: LLMError) -> str:
    """A short reason for a fall-through: "HTTP 529", "no first token within 1.0s", ..."""
    cause = exc.__cause__
    status = getattr(cause, "status_code", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    text = str(exc)
    if isinstance(cause, TimeoutError):
        return text.split(": ", 1)[-1]
    return text[:160]


def without_tools(messages: Messages) -> Messages:
    """The history for a model without tool use: tool calls dropped, tool answers as notes."""
    plain: Messages = []
    for message in messages:
        if message.get("role") == "tool":
            verb = "failed" if message.get("is_error") else "answered"
            note = f"The {message.get('name') or 'lookup'} tool {verb}: {message.get('content', '')}"
            plain.append({"role": "system", "content": note})
            continue
        clean = {k: v for k, v in message.items() if k not in ("tool_calls", "tool_call_id", "name", "is_error")}
        if clean.get("role") == "assistant" and not str(clean.get("content") or "").strip():
            continue
        plain.append(clean)
    return plain


class FallbackChatModel(ChatModel):
    provider = "chain"

    def __init__(self, links: Sequence[Link], rule: RoutingRule | None = None, min_try_s: float = 0.05) -> None:
        if not links:
            raise ValueError("a chain needs at least one model")
        names = [link.name for link in links]
        if len(set(names)) != len(names):
            raise ValueError(f"link names must differ: {names}")
        self.links = tuple(links)
        self.rule = rule or RoutingRule()
        self.min_try_s = min_try_s
        self.model = ">".join(names)
        self.capabilities = Capabilities(
            streaming=True,
            tools=any(link.model.capabilities.tools for link in links),
            prompt_cache=any(link.model.capabilities.prompt_cache for link in links),
        )
        self.down: set[str] = set()  # links that failed to load: skipped

    async def load(self) -> None:
        """Load every link (the local model stays loaded while it is in the chain). A link that
        fails to load is left out; the chain fails only when none is left."""
        results = await asyncio.gather(*(link.model.load() for link in self.links), return_exceptions=True)
        for link, result in zip(self.links, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                self.down.add(link.name)
                log.error("chain link %s could not be loaded and is left out: %s", link.name, result)
        if len(self.down) == len(self.links):
            raise LLMError(f"no model of the chain {self.model} could be loaded")
        log.info("LLM chain %s ready%s", " > ".join(l.name for l in self.links if l.name not in self.down),
                 f" ({', '.join(sorted(self.down))} left out)" if self.down else "")

    async def aclose(self) -> None:
        results = await asyncio.gather(*(link.model.aclose() for link in self.links), return_exceptions=True)
        for link, result in zip(self.links, results, strict=True):
            if isinstance(result, Exception):
                log.debug("closing chain link %s failed: %s", link.name, result)

    def route(self, messages: Messages) -> tuple[Route, list[Link]]:
        """The links this conversation goes through, in order, and why."""
        route = self.rule.choose(last_caller_text(messages))
        return route, self._links(route)

    def _links(self, route: Route) -> list[Link]:
        return [link for link in self.links if link.name not in self.down and (route.strong or not link.strong)]

    async def warm(self, messages: Messages, tools: Sequence[ToolSpec] = ()) -> Usage | None:
        """Warm the link a call's turns start with (the strong one only when it is always used)."""
        links = self._links(self.rule.choose(""))
        if not links:
            return None
        first = links[0]
        return await first.model.warm(self._messages_for(first, messages),
                                      tools if first.model.capabilities.tools else ())

    @staticmethod
    def _messages_for(link: Link, messages: Messages) -> Messages:
        return messages if link.model.capabilities.tools else without_tools(messages)

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats,
                           tools: tuple[ToolSpec, ...] = ()) -> AsyncIterator[str | ToolCall]:
        route, links = self.route(messages)
        stats.extra["route"] = route.why
        fallbacks: list[dict[str, Any]] = stats.extra.setdefault("fallbacks", [])
        failed_usage: list[Usage] = stats.extra.setdefault("failed_usage", [])
        clocks: dict[str, float] = {}
        errors: list[str] = []
        for index, link in enumerate(links):
            after = links[index + 1].name if index + 1 < len(links) else RECOVERY
            started = time.monotonic()
            deadline = clocks.setdefault(link.budget or link.name, started + link.first_token_s)
            if deadline - started < self.min_try_s:
                fallbacks.append(_fallback(link.name, after, "its first-token budget was spent", 0.0))
                continue
            link_stats = StreamStats()
            served = False
            try:
                pieces = link.model.stream(self._messages_for(link, messages), max_tokens, tools=tools,
                                           stats=link_stats, first_token_timeout=deadline - started)
                async with aclosing(pieces):
                    async for piece in pieces:
                        if not served:
                            served = True
                            _serve(stats, link, link_stats)
                        yield piece
                if not served:  # it answered, with nothing: the turn decides what to say
                    served = True
                    _serve(stats, link, link_stats)
                return
            except LLMError as exc:
                if served:
                    raise
                reason = reason_of(exc)
                errors.append(f"{link.name}: {reason}")
                ms = round((time.monotonic() - started) * 1000, 1)
                fallbacks.append(_fallback(link.name, after, reason, ms))
                log.warning("LLM %s failed before its first token (%s, %.0f ms); %s takes over",
                            link.name, reason, ms, after)
            finally:
                if served:
                    _copy_usage(link_stats, stats)
                elif (usage := link_stats.usage()) is not None:
                    failed_usage.append(usage)
        stats.provider, stats.model, stats.price_id = RECOVERY, "", ""
        raise LLMError("every model failed: " + ("; ".join(errors) or "none available"))


def _fallback(source: str, target: str, reason: str, ms: float) -> dict[str, Any]:
    return {"from": source, "to": target, "reason": reason, "ms": ms}


def _serve(stats: StreamStats, link: Link, link_stats: StreamStats) -> None:
    stats.provider, stats.model, stats.price_id = link.name, link_stats.model, link_stats.price_id


def _copy_usage(source: StreamStats, target: StreamStats) -> None:
    target.output_tokens = source.output_tokens
    target.input_tokens = source.input_tokens
    for key in ("cache_read_input_tokens", "cache_creation_input_tokens"):
        if key in source.extra:
            target.extra[key] = source.extra[key]
