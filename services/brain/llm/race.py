"""How one turn runs through a fallback chain (`fallback.FallbackChatModel`): the links, and the race.

Each link streams in a task of its own into one queue. A link still silent when its first-token
budget (`budgets.FirstTokenTimes`: measured, not fixed) runs out is not abandoned: the next link
starts beside it and whichever speaks first is heard, the other is cancelled. A link that fails
(429/529/5xx, refused) hands over at once. With no first token after `filler_after_s` the caller
hears a short filler ("One moment.") while the links keep going; after `give_up_s` the race is lost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ringline.contracts.pricing import Usage

from .base import ChatModel, LLMError, Messages, StreamStats, ToolCall, ToolSpec

if TYPE_CHECKING:
    from .fallback import FallbackChatModel

log = logging.getLogger("ringline.brain.fallback")

RECOVERY = "recovery"  # the name of the chain's last resort: the turn's canned recovery line
FILLER = "One moment. "
RECOVERY_LINE = "Sorry, I didn't catch that. Could you say it again?"  # BrainSettings.recovery_line's default
_DONE = object()  # a link's stream ended


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


class Race:
    """One turn's run through the chain: each link streams in a task of its own into one queue; a
    link slower than its budget gets the next one started beside it; the first to speak wins."""

    def __init__(self, chain: FallbackChatModel, links: list[Link], messages: Messages, max_tokens: int,
                 tools: tuple[ToolSpec, ...], stats: StreamStats, stall_timeout: float | None = None) -> None:
        self.chain, self.links, self.messages, self.max_tokens, self.tools = chain, links, messages, max_tokens, tools
        self.stall_timeout = stall_timeout  # between a link's own tokens (not between the filler and the answer)
        self.stats = stats
        self.fallbacks: list[dict[str, Any]] = stats.extra.setdefault("fallbacks", [])
        self.failed_usage: list[Usage] = stats.extra.setdefault("failed_usage", [])
        self.queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self.link_stats: dict[int, StreamStats] = {}
        self.asked: dict[int, float] = {}
        self.clocks: dict[str, float] = {}
        self.errors: list[str] = []
        self.started = time.monotonic()
        self.give_up = self.started + chain.give_up_s
        self.filler_said = False
        self.served: int | None = None
        self._first: Any = _DONE
        self._next = 0
        self._next_at = self.started

    def _after(self, index: int) -> str:
        return self.links[index + 1].name if index + 1 < len(self.links) else RECOVERY

    def _start_next(self, now: float) -> None:
        """Start the next link that still has budget (links sharing a budget share its clock)."""
        while self._next < len(self.links):
            index, link = self._next, self.links[self._next]
            self._next += 1
            budget = self.chain.times.budget(link.name, link.first_token_s)
            deadline = self.clocks.setdefault(link.budget or link.name, now + budget)
            if deadline - now < self.chain.min_try_s:
                self.fallbacks.append(_fallback(link.name, self._after(index), "its first-token budget was spent", 0.0))
                continue
            self.link_stats[index] = StreamStats()
            self.asked[index] = now
            self.tasks[index] = asyncio.create_task(self._run(index, link, self.give_up - now),
                                                    name=f"llm-{link.name}")
            self._next_at = deadline
            return

    async def _run(self, index: int, link: Link, timeout: float) -> None:
        model = link.model
        messages = self.messages if model.capabilities.tools else without_tools(self.messages)
        try:
            pieces = model.stream(messages, self.max_tokens, tools=self.tools, stats=self.link_stats[index],
                                  first_token_timeout=timeout, stall_timeout=self.stall_timeout)
            async with aclosing(pieces):
                async for piece in pieces:
                    self.queue.put_nowait((index, piece))
            self.queue.put_nowait((index, _DONE))
        except LLMError as exc:
            self.queue.put_nowait((index, exc))

    async def first(self) -> AsyncIterator[str | int]:
        """Yields the filler (at most once) and then the index of the link that answered first;
        ends without an index when none did."""
        chain = self.chain
        filler_at = self.started + chain.filler_after_s if chain.filler else math.inf
        while True:
            now = time.monotonic()
            running = [i for i, t in self.tasks.items() if not t.done()]
            if self._next < len(self.links) and (now >= self._next_at or not running):
                if running:  # still going, but slower than its budget: the next link starts beside it
                    slow = max(running)
                    self.fallbacks.append(_fallback(self.links[slow].name, self.links[self._next].name,
                                                    f"no first token within {now - self.asked[slow]:.1f}s "
                                                    "(still trying)", round((now - self.started) * 1000, 1)))
                self._start_next(now)
                continue
            if not running and self.queue.empty():
                return
            if now >= self.give_up:
                self.errors.append(f"no first token within {chain.give_up_s:.1f}s")
                return
            if not self.filler_said and now >= filler_at:
                self.filler_said = True
                self.stats.extra["filler_ms"] = round((now - self.started) * 1000, 1)
                log.info("LLM chain: no first token after %.0f ms; the caller hears a filler",
                         (now - self.started) * 1000)
                yield chain.filler
                continue
            wake = min(self._next_at if self._next < len(self.links) else math.inf,
                       filler_at if not self.filler_said else math.inf, self.give_up)
            try:
                index, item = await asyncio.wait_for(self.queue.get(), max(0.0, wake - now))
            except TimeoutError:
                continue
            if isinstance(item, LLMError):
                self._failed(index, item)
                self._next_at = time.monotonic()  # a failure: the next link starts at once
                continue
            self._serve(index)
            self._first = item
            yield index
            return

    def _failed(self, index: int, exc: LLMError) -> None:
        link = self.links[index]
        reason = reason_of(exc)
        self.errors.append(f"{link.name}: {reason}")
        ms = round((time.monotonic() - self.asked[index]) * 1000, 1)
        going = [self.links[i].name for i, t in self.tasks.items() if i != index and not t.done()]
        after = going[0] if going else self.links[self._next].name if self._next < len(self.links) else RECOVERY
        self.fallbacks.append(_fallback(link.name, after, reason, ms))
        log.warning("LLM %s failed before its first token (%s, %.0f ms); %s takes over", link.name, reason, ms, after)
        if (usage := self.link_stats[index].usage()) is not None:
            self.failed_usage.append(usage)

    def _serve(self, index: int) -> None:
        self.served = index
        link, link_stats = self.links[index], self.link_stats[index]
        _serve(self.stats, link, link_stats)
        if link_stats.first_token_at:
            self.chain.times.record(link.name, link_stats.first_token_at - link_stats.started_at)
        for other, task in self.tasks.items():
            if other != index:
                task.cancel()

    async def rest(self, winner: int) -> AsyncIterator[str | ToolCall]:
        """The winner's pieces, in order, until it ends; its failure from here is the turn's."""
        try:
            item = self._first
            if item is _DONE:
                return  # it answered, with nothing: the turn decides what to say
            yield item
            while True:
                index, item = await self.queue.get()
                if index != winner:
                    continue
                if item is _DONE:
                    return
                if isinstance(item, LLMError):
                    raise item
                yield item
        finally:
            _copy_usage(self.link_stats[winner], self.stats)

    async def close(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for index, link_stats in self.link_stats.items():
            if index != self.served and (usage := link_stats.usage()) is not None and usage not in self.failed_usage:
                self.failed_usage.append(usage)


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
