"""One agent turn: stream the LLM, cut the text into speakable chunks, publish them in order.

The caller must never hear silence: when the model fails, times out or says nothing before
the first chunk, the turn speaks the recovery line instead. A failure after some chunks went
out just closes the turn (the caller already heard a partial answer).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from opentelemetry import trace

from ringline.contracts.messages import ReplyChunk, TurnTiming, now

from .chunker import SentenceChunker
from .llm.base import ChatModel, LLMError, Messages, StreamStats

log = logging.getLogger("ringline.brain.turn")

PublishChunk = Callable[[ReplyChunk], Awaitable[None]]
Outcome = Literal["answer", "recovery", "cancelled"]


class AgentTurn:
    """Runs once. After `run`, `spoken` is what was published and `stats` how the LLM did."""

    def __init__(
        self,
        *,
        call_id: str,
        turn_id: str,
        model: ChatModel,
        messages: Messages,
        publish: PublishChunk,
        timing: TurnTiming,
        in_reply_to: str = "",
        max_tokens: int = 60,
        recovery_line: str,
        first_token_timeout: float | None = None,
        stall_timeout: float | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self.call_id = call_id
        self.turn_id = turn_id
        self.model = model
        self.messages = messages
        self.timing = timing
        self.in_reply_to = in_reply_to
        self.max_tokens = max_tokens
        self.recovery_line = recovery_line
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.stats = StreamStats()
        self.spoken: list[str] = []
        self.outcome: Outcome = "cancelled"
        self.error = ""
        self._publish = publish
        self._tracer = tracer or trace.get_tracer("ringline.brain")
        self._seq = 0

    @property
    def text(self) -> str:
        return " ".join(self.spoken)

    async def run(self) -> Outcome:
        chunker = SentenceChunker()
        self.timing.llm_started_at = now()
        self.timing.llm_provider = self.model.provider
        rest: list[str] = []
        span = self._tracer.start_span(
            "llm", attributes={"llm.provider": self.model.provider, "llm.model": self.model.model}
        )
        try:
            async for piece in self.model.stream(
                self.messages,
                self.max_tokens,
                stats=self.stats,
                first_token_timeout=self.first_token_timeout,
                stall_timeout=self.stall_timeout,
            ):
                if not self.timing.first_token_at:
                    self.timing.first_token_at = self.stats.first_token_at
                for text in chunker.push(piece):
                    await self._say(text, final=False)
            rest = chunker.flush()
        except LLMError as exc:
            self.error = str(exc)
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, self.error))
            log.warning("call %s turn %s: %s", self.call_id, self.turn_id, exc)
        finally:
            span.set_attribute("llm.tokens", self.stats.tokens)
            span.set_attribute("llm.first_token_ms", self.stats.first_token_ms)
            span.end()

        if not self.spoken and not rest:
            await self._recover()
            return self.outcome
        for text in rest[:-1]:
            await self._say(text, final=False)
        await self._say(rest[-1] if rest else "", final=True)
        self.outcome = "answer"
        return self.outcome

    async def _recover(self) -> None:
        if not self.error:
            self.error = "the model produced nothing speakable"
            log.warning("call %s turn %s: %s", self.call_id, self.turn_id, self.error)
        await self._say(self.recovery_line, final=True, kind="recovery")
        self.outcome = "recovery"

    async def _say(self, text: str, *, final: bool, kind: Any = "answer") -> None:
        if text and not self.timing.first_chunk_at:
            self.timing.first_chunk_at = now()
        chunk = ReplyChunk(
            call_id=self.call_id,
            turn_id=self.turn_id,
            seq=self._seq,
            text=text,
            final=final,
            kind=kind,
            in_reply_to=self.in_reply_to,
            timing=self.timing.model_copy(),
        )
        self._seq += 1
        if text:
            self.spoken.append(text)
        await self._publish(chunk)

    def metrics(self) -> dict[str, Any]:
        """The `turn.llm` event's data."""
        data: dict[str, Any] = {
            "tokens": self.stats.tokens,
            "provider": self.model.provider,
            "model": self.model.model,
            "first_token_ms": self.stats.first_token_ms,
            "total_ms": self.stats.total_ms,
            "chunks": self._seq,
            "outcome": self.outcome,
        }
        if self.stats.input_tokens is not None:
            data["input_tokens"] = self.stats.input_tokens
        if self.error:
            data["error"] = self.error
        return data


async def wait_briefly(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False
