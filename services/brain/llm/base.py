"""The brain's narrow LLM interface.

`ChatModel.stream` is the template method: it times the stream (first token, total), enforces
the first-token and stall timeouts, wraps every provider failure into one `LLMError`, and
closes the provider's stream when the consumer stops early or is cancelled (barge-in).
Providers write only `_stream_impl` (and `load`/`aclose` when they hold resources).

Tools: a model that declares `capabilities.tools` receives `ToolSpec`s and may yield a
`ToolCall` among its text pieces (after the text it said first). The caller runs the tool
and streams again with the exchange appended in the provider-neutral form
`{"role": "assistant", "content": text, "tool_calls": [{"id", "name", "arguments"}]}` then
`{"role": "tool", "tool_call_id", "name", "content", "is_error"}`; each provider translates it.
Models without the capability are never given tools.

Usage: a stream leaves what it consumed in its `StreamStats` (`usage()` gives a
`contracts.pricing.Usage` under the model's `price_id`). `warm` primes a provider's prompt cache
for a call that is about to start (a cheap request while the greeting plays).
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ringline.contracts.pricing import Usage

if TYPE_CHECKING:
    from ..settings import BrainSettings

log = logging.getLogger("ringline.brain.llm")

Messages = list[dict[str, Any]]


class LLMError(RuntimeError):
    """Any failure of a chat model: the caller hears the recovery line instead."""


@dataclass(frozen=True)
class ToolSpec:
    """A tool the model may call: its name, what it does, and its arguments as JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(frozen=True)
class ToolCall:
    """The model asks for `name(**arguments)`; `id` ties the result to the request."""

    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Capabilities:
    streaming: bool = True
    tools: bool = False
    prompt_cache: bool = False
    local: bool = False  # runs on this process's CPU, one worker for every call (not a remote API)


@dataclass
class StreamStats:
    """Filled in while a stream runs. Wall-clock seconds, like every timestamp on the bus."""

    provider: str = ""
    model: str = ""
    price_id: str = ""  # the id the price table knows the model by (see `ChatModel.price_id`)
    started_at: float = 0.0
    first_token_at: float = 0.0
    ended_at: float = 0.0
    pieces: int = 0
    output_tokens: int | None = None  # set by providers that report usage
    input_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.output_tokens if self.output_tokens is not None else self.pieces

    def usage(self) -> Usage | None:
        """What the stream consumed, for pricing; None when it consumed nothing."""
        output = self.output_tokens if self.output_tokens is not None else self.pieces
        usage = Usage(llm_model=self.price_id or self.model, input_tokens=self.input_tokens or 0,
                      output_tokens=output,
                      cache_read_input_tokens=int(self.extra.get("cache_read_input_tokens") or 0),
                      cache_creation_input_tokens=int(self.extra.get("cache_creation_input_tokens") or 0))
        if not (usage.input_tokens or usage.output_tokens or usage.cache_read_input_tokens
                or usage.cache_creation_input_tokens):
            return None
        return usage

    @property
    def first_token_ms(self) -> float:
        if not (self.started_at and self.first_token_at):
            return 0.0
        return round((self.first_token_at - self.started_at) * 1000, 1)

    @property
    def total_ms(self) -> float:
        if not (self.started_at and self.ended_at):
            return 0.0
        return round((self.ended_at - self.started_at) * 1000, 1)


class ChatModel(ABC):
    """A streaming chat model. One instance serves every call of the process."""

    provider: str = "base"
    model: str = ""
    capabilities: Capabilities = Capabilities()

    async def load(self) -> None:
        """Get ready to answer quickly (load weights, warm caches). Called once at start-up."""

    async def aclose(self) -> None:
        """Release what `load` took."""

    @property
    def price_id(self) -> str:
        """The model id the price table knows (`contracts.pricing`); local models say "local/..."."""
        return self.model

    async def warm(self, messages: Messages, tools: Sequence[ToolSpec] = ()) -> Usage | None:
        """Prime the prompt cache for a call opening with `messages` (and `tools`), in the background
        while the greeting plays. Returns what that cost; None when there is nothing to warm."""
        return None

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
        """Yield the reply's text pieces (and, given `tools`, `ToolCall`s) as they arrive.

        `messages` are `{"role": "system"|"user"|"assistant"|"tool", "content": str, ...}`.
        `tools` are ignored by a model without the tools capability. Raises `LLMError` for any
        provider failure or timeout; cancellation propagates unchanged.
        """
        stats = stats if stats is not None else StreamStats()
        stats.provider, stats.model, stats.price_id = self.provider, self.model, self.price_id
        stats.started_at = time.time()
        if tools and self.capabilities.tools:
            # only a model with the tools capability takes `tools=` (its _stream_impl declares it)
            pieces = self._stream_impl(messages, max_tokens, stats, tools=tuple(tools))  # type: ignore[call-arg]
        else:
            pieces = self._stream_impl(messages, max_tokens, stats)
        try:
            while True:
                timeout = first_token_timeout if stats.pieces == 0 else stall_timeout
                try:
                    async with asyncio.timeout(timeout):  # same task: provider scopes stay intact
                        piece = await anext(pieces)
                except StopAsyncIteration:
                    break
                except TimeoutError as exc:
                    which = "first token" if stats.pieces == 0 else "next token"
                    raise LLMError(f"{self.provider}: no {which} within {timeout:.1f}s") from exc
                except (LLMError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    raise LLMError(f"{self.provider}: {type(exc).__name__}: {exc}") from exc
                if not piece:
                    continue
                if stats.pieces == 0:
                    stats.first_token_at = time.time()
                stats.pieces += 1
                yield piece
        finally:
            stats.ended_at = time.time()
            try:
                await pieces.aclose()
            except Exception:  # a provider that fails while being closed
                log.debug("closing a %s stream failed", self.provider, exc_info=True)

    @abstractmethod
    def _stream_impl(self, messages: Messages, max_tokens: int,
                     stats: StreamStats) -> AsyncGenerator[str | ToolCall, None]:
        """An async generator of text pieces. May set `stats.output_tokens`/`input_tokens`.

        A provider with the tools capability also takes `tools: tuple[ToolSpec, ...]` (passed
        only when there are some) and yields a `ToolCall` for each call the model makes.
        """


def build_chat_model(settings: BrainSettings, shared: dict[str, ChatModel] | None = None) -> ChatModel:
    """The one provider switch: the configured chain (`llm.build`); one model needs no chain."""
    from .build import build_chat_model as build

    return build(settings, shared)
