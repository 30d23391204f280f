"""A chain of chat models within one turn: strong Claude, fast Claude, local model.

`FallbackChatModel` is a `ChatModel`: the turn streams from it as from any model. It asks its
links in order (`race.Race`). A link that fails before its first token (HTTP 429/529/5xx, a
connect error) hands over at once; a link that is only slow is covered, not replaced: when its
first-token budget runs out the next link starts beside it and whichever speaks first is heard.
Once a link has produced a token the caller may already be hearing it, so a later failure is not
retried elsewhere (never say something twice).

The caller is never left in silence: with no first token after `filler_after_s` (1.0 s: with
the STT's ~0.45 s and the TTS's ~0.15 s the caller hears it within 2 s of finishing) the chain
yields a short filler (`FILLER`, "One moment.") as its first text, which the turn speaks like any
answer, while the links keep going; then the real answer follows. The recovery line only when
nothing answers by `give_up_s`: the chain raises `LLMError` and the turn speaks its line, or,
when the filler was already heard, yields the line itself (`recovery_line`).

First-token budgets follow what each link measurably does (`budgets.FirstTokenTimes`, 2 x its
recent p90, the configured budget as prior and bound); links that name the same `budget` share
one clock, so a second Claude model gets only what the first one left.

The routing rule (`routing.RoutingRule`) decides per turn whether the `strong` links are tried
at all. The stream's `StreamStats` say which link served (`provider` = the link's name,
`model`), `extra["fallbacks"]` lists every hand-over as `{"from", "to", "reason", "ms"}` (a slow
link that kept going says "still trying"), `extra["filler_ms"]` when the filler went out, and
`extra["route"]` why the strong model was (not) used.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

from ringline.contracts.pricing import Usage

from .base import Capabilities, ChatModel, LLMError, Messages, StreamStats, ToolCall, ToolSpec
from .budgets import FirstTokenTimes
from .race import FILLER, RECOVERY, RECOVERY_LINE, Link, Race, reason_of, without_tools
from .routing import Route, RoutingRule, last_caller_text

__all__ = ["FILLER", "RECOVERY", "FallbackChatModel", "Link", "reason_of", "without_tools"]


log = logging.getLogger("ringline.brain.fallback")

WARM_FALLBACK_S = 300.0  # a later link that answered a turn this recently is warmed for each new call


class FallbackChatModel(ChatModel):
    provider = "chain"

    def __init__(self, links: Sequence[Link], rule: RoutingRule | None = None, min_try_s: float = 0.05, *,
                 filler: str = FILLER, filler_after_s: float = 1.0, give_up_s: float = 4.5,
                 recovery_line: str = RECOVERY_LINE, times: FirstTokenTimes | None = None) -> None:
        if not links:
            raise ValueError("a chain needs at least one model")
        names = [link.name for link in links]
        if len(set(names)) != len(names):
            raise ValueError(f"link names must differ: {names}")
        self.links = tuple(links)
        self.rule = rule or RoutingRule()
        self.min_try_s = min_try_s
        self.filler, self.filler_after_s, self.give_up_s = filler, filler_after_s, give_up_s
        self.recovery_line = recovery_line
        self.times = times or FirstTokenTimes()
        self.model = ">".join(names)
        self.capabilities = Capabilities(
            streaming=True,
            tools=any(link.model.capabilities.tools for link in links),
            prompt_cache=any(link.model.capabilities.prompt_cache for link in links),
        )
        self.down: set[str] = set()  # links that failed to load: skipped
        self.served_at: dict[str, float] = {}  # link name -> when (monotonic) it last answered a turn
        self._stall_timeouts: dict[int, float | None] = {}  # id(stats) -> the stream's stall timeout

    async def stream(
        self,
        messages: Messages,
        max_tokens: int,
        *,
        tools: Sequence[ToolSpec] = (),
        stats: StreamStats | None = None,
        first_token_timeout: float | None = None,
        stall_timeout: float | None = None,
    ) -> AsyncGenerator[str | ToolCall, None]:
        """As any model's, except that the wait between the filler and the first link's answer is
        the race's (`give_up_s` bounds it), not a stall between tokens: `stall_timeout` applies
        between the tokens of the link that serves (each link's own stream enforces it)."""
        stats = stats if stats is not None else StreamStats()
        self._stall_timeouts[id(stats)] = stall_timeout
        pieces = super().stream(messages, max_tokens, tools=tools, stats=stats,
                                first_token_timeout=first_token_timeout)
        try:
            async with aclosing(pieces):
                async for piece in pieces:
                    yield piece
        finally:
            self._stall_timeouts.pop(id(stats), None)

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
        log.info("LLM chain %s ready%s", " > ".join(k.name for k in self.links if k.name not in self.down),
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
        """Warm the link a call's turns start with (the strong one only when it is always used),
        and beside it every later link that answered a turn within `WARM_FALLBACK_S`: while the
        first link is failing, the call's turns will land on the fallback, and a local model that
        meets a new call's prompt cold makes that first answer late. A healthy chain warms only
        its first link (no local work per call for nothing)."""
        links = self._links(self.rule.choose(""))
        if not links:
            return None
        now = time.monotonic()
        recent = [link for link in links[1:] if now - self.served_at.get(link.name, -math.inf) < WARM_FALLBACK_S]
        results = await asyncio.gather(
            *(link.model.warm(self._messages_for(link, messages), tools if link.model.capabilities.tools else ())
              for link in [links[0], *recent]),
            return_exceptions=True)
        for link, result in zip([links[0], *recent], results, strict=True):
            if isinstance(result, Exception):
                log.debug("warming chain link %s failed: %s", link.name, result)
        first = results[0]
        return first if isinstance(first, Usage) else None

    def background(self) -> FallbackChatModel | None:
        """The chain for work nobody is waiting on the line for (the after-call summary): the
        cloud links only, no filler, no recovery line. The local model is left to the live calls
        (one worker thread: a summary on it would hold up the next caller's answer); with no
        cloud link there is no background chain, and the caller of this uses its rules."""
        links = [link for link in self.links if not link.model.capabilities.local]
        if not links:
            return None
        chain = FallbackChatModel(links, self.rule, self.min_try_s, filler="", filler_after_s=self.filler_after_s,
                                  give_up_s=self.give_up_s, recovery_line="", times=self.times)
        chain.down = set(self.down)
        return chain

    @staticmethod
    def _messages_for(link: Link, messages: Messages) -> Messages:
        return messages if link.model.capabilities.tools else without_tools(messages)

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats,
                           tools: tuple[ToolSpec, ...] = ()) -> AsyncGenerator[str | ToolCall, None]:
        route, links = self.route(messages)
        stats.extra["route"] = route.why
        race = Race(self, links, messages, max_tokens, tools, stats, self._stall_timeouts.get(id(stats)))
        try:
            winner = None
            async for item in race.first():
                if isinstance(item, int):
                    winner = item
                    break
                yield item  # the filler
            if winner is None:
                stats.provider, stats.model, stats.price_id = RECOVERY, "", ""
                if race.filler_said and self.recovery_line:  # the caller heard "one moment": say why not more
                    yield self.recovery_line
                    return
                raise LLMError("every model failed: " + ("; ".join(race.errors) or "none available"))
            self.served_at[links[winner].name] = time.monotonic()
            async for piece in race.rest(winner):
                yield piece
        finally:
            await race.close()
