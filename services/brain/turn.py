"""One agent turn: stream the LLM, run the tools it asks for, publish speakable chunks in order.

The caller must never hear silence: when the model fails, times out or says nothing, the turn
speaks the recovery line (a `FallbackChatModel` has tried its other models first, within the same
turn; its stats name the one that served); a slow tool gets a filler ("Let me check that.") and a failed one an
apology. A failure after the model said something in its last round just closes the turn.

A turn may be held: its chunks are buffered, not published (a preemptive turn until `release`
with the final transcript, so nothing is spoken on a guess; a reply the caller talked into
until `resume`). When the model calls `end_call`, or its reply is a goodbye, the final chunk
has kind "goodbye" and the session hangs up once it has been heard. `transfer_call` (offered
when the agent has a transfer number) ends the turn the same way with a hand-over line, and
`transfer_to` tells the voice to transfer the call instead of hanging up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry import trace

from ringline.contracts.messages import ReplyChunk, Transcript, TurnTiming, now

from .accounting import llm_report, trace_stream
from .chunker import FIRST_CLAUSE_WORDS, SentenceChunker
from .conversation import Conversation
from .gate import ChunkGate
from .llm.base import ChatModel, LLMError, Messages, StreamStats, ToolCall, ToolSpec
from .rounds import Round, exchange_messages, remember
from .tools import END_CALL, TRANSFER_CALL, TRANSFER_LINE, ToolBox, run_with_filler

log = logging.getLogger("ringline.brain.turn")

PublishChunk = Callable[[ReplyChunk], Awaitable[None]]
Outcome = Literal["answer", "recovery", "tool_error", "goodbye", "transfer", "cancelled"]


@dataclass(frozen=True)
class TurnOptions:
    """Per-agent settings every turn shares."""

    recovery_line: str
    max_tokens: int = 60
    first_token_timeout: float | None = None
    stall_timeout: float | None = None
    tools: Sequence[ToolSpec] = ()
    filler_line: str = "Let me check that."
    filler_after_s: float = 0.7
    tool_error_line: str = "Sorry, I couldn't look that up right now."
    max_tool_rounds: int = 3
    goodbye_line: str = "Thanks for calling. Goodbye!"
    detect_goodbye: Callable[[str], bool] | None = None
    transfer_to: str = ""  # where `transfer_call` sends the caller; empty: the tool is not offered
    transfer_line: str = TRANSFER_LINE
    first_clause_words: int = FIRST_CLAUSE_WORDS


class AgentTurn:
    """Runs once. Afterwards `rounds` hold what was said and done, `outcome` how it went."""

    def __init__(self, *, call_id: str, turn_id: str, model: ChatModel, messages: Messages,
                 publish: PublishChunk, timing: TurnTiming, options: TurnOptions, in_reply_to: str = "",
                 toolbox: ToolBox | None = None, held: bool = False, tracer: trace.Tracer | None = None) -> None:
        self.call_id = call_id
        self.turn_id = turn_id
        self.model = model
        self.messages = list(messages)
        self.timing = timing
        self.options = options
        self.in_reply_to = in_reply_to
        self.toolbox = toolbox
        self.stats = StreamStats()  # the first round's: which provider served the turn
        self.round_stats: list[StreamStats] = []
        self.tokens = 0
        self.rounds: list[Round] = []
        self.spoken: list[str] = []  # texts published (heard or not)
        self.tool_reports: list[dict[str, Any]] = []
        self.extra: dict[str, Any] = {}  # more for the `turn.llm` event (end of turn, preemptive)
        self.outcome: Outcome = "cancelled"
        self.error = ""
        self.end_reason = ""  # set when the model chose to end (or transfer) the call
        self.transfer_to = ""  # set when the model chose to transfer the call
        self.final_kind = ""
        self.released_at = 0.0
        self.first_ready_at = 0.0  # when the first speakable chunk was ready (published or held)
        self._publish = publish
        self._tracer = tracer or trace.get_tracer("ringline.brain")
        self._seq = 0
        self._gate = ChunkGate(self._emit, held)

    @property
    def text(self) -> str:
        return " ".join(self.spoken)

    @property
    def held(self) -> bool:
        return self._gate.held

    # -- the turn -----------------------------------------------------------------------------

    async def run(self) -> Outcome:
        self.timing.llm_started_at = now()
        self.timing.llm_provider = self.model.provider
        chunker = SentenceChunker(first_clause_words=self.options.first_clause_words)
        messages = list(self.messages)
        rest: list[str] = []
        failed = False
        tools = self.options.tools if self.toolbox is not None else ()
        for number in range(self.options.max_tool_rounds + 1):
            current = Round()
            self.rounds.append(current)
            rest = await self._stream_round(messages, chunker, current, tools)
            if not current.calls or self.error:
                break
            ending = next((c for c in current.calls if c.name == END_CALL.name), None)
            if ending is not None:
                self.end_reason = str(ending.arguments.get("reason") or "the agent ended the call")
                break
            handing = next((c for c in current.calls if c.name == TRANSFER_CALL.name), None)
            if handing is not None and self.options.transfer_to:
                self.end_reason = str(handing.arguments.get("reason") or "the caller asked for a person")
                self.transfer_to = self.options.transfer_to
                break
            if number == self.options.max_tool_rounds:
                self.error, failed = f"still calling tools after {number} rounds", True
                log.warning("call %s turn %s: %s", self.call_id, self.turn_id, self.error)
                break
            failed = await self._use_tools(current)
            if failed:
                break
            messages = [*messages, *exchange_messages(current)]
        await self._finish(self.rounds[-1], rest, failed)
        await self._gate.wait_open()  # a held turn stays alive until it is let go
        return self.outcome

    async def _stream_round(self, messages: Messages, chunker: SentenceChunker, current: Round,
                            tools: Sequence[ToolSpec]) -> list[str]:
        """Stream one LLM request; chunks go out as they complete. Returns the unsaid rest."""
        stats = self.stats if not self.rounds[:-1] else StreamStats()
        self.round_stats.append(stats)
        span = self._tracer.start_span("llm", attributes={"llm.provider": self.model.provider,
                                                          "llm.model": self.model.model})
        try:
            async for piece in self.model.stream(messages, self.options.max_tokens, tools=tools, stats=stats,
                                                 first_token_timeout=self.options.first_token_timeout,
                                                 stall_timeout=self.options.stall_timeout):
                if not self.timing.first_token_at:
                    self.timing.first_token_at = stats.first_token_at
                    self.timing.llm_provider = self.stats.provider  # a chain names the link that serves
                if isinstance(piece, ToolCall):
                    current.calls.append(piece)
                    continue
                for text in chunker.push(piece):
                    await self._say(text, current)
        except LLMError as exc:
            self.error = str(exc)
            span.record_exception(exc)
            span.set_status(trace.Status(trace.StatusCode.ERROR, self.error))
            log.warning("call %s turn %s: %s", self.call_id, self.turn_id, exc)
        finally:
            self.tokens += stats.tokens
            trace_stream(span, stats)
            span.set_attribute("llm.tokens", stats.tokens)
            span.set_attribute("llm.first_token_ms", stats.first_token_ms)
            span.end()
        rest = chunker.flush()
        if current.calls and not self.error:
            for text in rest:  # said before the tool runs
                await self._say(text, current)
            return []
        return rest

    async def _use_tools(self, current: Round) -> bool:
        """Run the round's tool calls (a filler if they are slow); True when one failed."""
        assert self.toolbox is not None
        said_first = bool(current.said)

        async def filler() -> None:
            await self._say(self.options.filler_line, current, kind="filler")

        results, filler_ms = await run_with_filler(
            self.toolbox, current.calls, self.call_id, self.options.filler_after_s,
            None if said_first else filler)
        current.results = results
        for result in results:
            report: dict[str, Any] = {"name": result.call.name, "ms": result.ms, "ok": result.ok,
                                      "filler_ms": filler_ms}
            if result.error:
                report["error"] = result.error
            self.tool_reports.append(report)
        return not all(r.ok for r in results)

    async def _finish(self, last: Round, rest: list[str], failed: bool) -> None:
        said_now = bool(last.said or rest)
        if self.end_reason:
            text = " ".join([*(t for _, t in last.said), *rest])
            for piece in rest[:-1]:
                await self._say(piece, last)
            said_before = any(r.said for r in self.rounds)
            line = self.options.transfer_line if self.transfer_to else self.options.goodbye_line
            final = rest[-1] if rest else ("" if said_before else line)
            await self._say(final, last, final=True, kind="goodbye")
            self.outcome = "transfer" if self.transfer_to else "goodbye"
            log.info("call %s: the model %s (%s): %r", self.call_id,
                     f"transfers the call to {self.transfer_to}" if self.transfer_to else "ends the call",
                     self.end_reason, text)
            return
        if failed:
            await self._say(self.options.tool_error_line, last, final=True)
            self.outcome = "tool_error"
            return
        if not said_now:
            if not self.error:
                self.error = "the model produced nothing speakable"
                log.warning("call %s turn %s: %s", self.call_id, self.turn_id, self.error)
            if not self.timing.first_token_at:
                self.timing.llm_provider = self.stats.provider  # "recovery" when a whole chain failed
            await self._say(self.options.recovery_line, last, final=True, kind="recovery")
            self.outcome = "recovery"
            return
        for piece in rest[:-1]:
            await self._say(piece, last)
        reply = " ".join([*(t for _, t in last.said), *rest])
        detect = self.options.detect_goodbye
        kind = "goodbye" if detect is not None and detect(reply) else "answer"
        await self._say(rest[-1] if rest else "", last, final=True, kind=kind)
        self.outcome = "goodbye" if kind == "goodbye" else "answer"

    # -- publishing ---------------------------------------------------------------------------

    async def _say(self, text: str, current: Round, *, final: bool = False, kind: Any = "answer") -> None:
        seq, self._seq = self._seq, self._seq + 1
        if text:
            current.said.append((seq, text))
            self.first_ready_at = self.first_ready_at or now()
        if final:
            self.final_kind = kind
        await self._gate.put((seq, text, final, kind))

    async def _emit(self, item: tuple[int, str, bool, Any]) -> None:
        seq, text, final, kind = item
        if text:
            if not self.timing.first_chunk_at:
                self.timing.first_chunk_at = now()
            self.spoken.append(text)
        chunk = ReplyChunk(call_id=self.call_id, turn_id=self.turn_id, seq=seq, text=text, final=final,
                           kind=kind, in_reply_to=self.in_reply_to, timing=self.timing.model_copy())
        await self._publish(chunk)

    async def release(self, transcript: Transcript) -> None:
        """The final transcript confirmed the guess: publish what is buffered, then go on live."""
        if not self._gate.held:
            return
        self.released_at = now()
        self.timing.speech_ended_at = transcript.speech_ended_at
        self.timing.transcript_at = transcript.emitted_at
        self.timing.stt_provider = transcript.provider
        self.in_reply_to = transcript.utterance_id
        await self._gate.open()

    def hold(self) -> bool:
        """Buffer from now on (the caller started talking again); False once something went out."""
        return self._gate.hold()

    async def resume(self) -> None:
        """Publish what is buffered and go on live."""
        await self._gate.open()

    # -- afterwards ---------------------------------------------------------------------------

    def remember(self, history: Conversation, heard_seq: int | None = None) -> None:
        """Write the turn into the history: everything said, or (interrupted) up to `heard_seq`."""
        remember(self.rounds, history, self.turn_id, heard_seq)

    def metrics(self) -> dict[str, Any]:
        """The `turn.llm` event's data."""
        data: dict[str, Any] = {
            "tokens": self.tokens,
            "provider": self.stats.provider or self.model.provider,
            "model": self.stats.model or self.model.model,
            "first_token_ms": self.stats.first_token_ms,
            "total_ms": round((now() - self.timing.llm_started_at) * 1000, 1) if self.timing.llm_started_at else 0.0,
            "chunks": self._seq,
            "outcome": self.outcome,
            "tool_rounds": sum(1 for r in self.rounds if r.calls),
        }
        if self.stats.input_tokens is not None:
            data["input_tokens"] = self.stats.input_tokens
        data.update(llm_report(self.round_stats))
        if self.error:
            data["error"] = self.error
        if self.end_reason:
            data["hangup_reason"] = self.end_reason
        if self.transfer_to:
            data["transfer_to"] = self.transfer_to
        data.update(self.extra)
        return data


async def wait_briefly(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
        return True
    except TimeoutError:
        return False
