"""Everything the agent says on one call: canned lines, LLM turns and preemptive guesses.

An LLM turn enters the history only once the caller has heard it (its final mark came back)
or it was cut off (then only the part heard, marked as interrupted), so the history always
holds what the caller actually heard. Canned lines go in when they are said and are cut the
same way if interrupted.

The voice decides nothing about turn-taking: it reads the call's `TurnState` and reports what
it does (a chunk going out, a turn done generating) to the session's `dispatch`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.events import LLM_USAGE, TURN_LLM, TURN_TOOL
from ringline.contracts.messages import CallEvent, ReplyChunk, Transcript, TurnTiming, now
from ringline.contracts.runtime import CallBus, inject_headers, tracer

from .accounting import turn_usages, usage_data
from .conversation import Conversation
from .events import ChunkOut, TurnDone
from .llm.base import ChatModel
from .phrases import is_agent_goodbye, normalize
from .settings import BrainSettings
from .state import CUT, TurnState
from .tools import ToolBox
from .turn import AgentTurn, TurnOptions, wait_briefly

log = logging.getLogger("ringline.brain.voice")


def new_turn_id() -> str:
    """A turn id safe inside marks and subjects (no ':' or '.')."""
    return uuid.uuid4().hex


def turn_options(settings: BrainSettings, model: ChatModel, toolbox: ToolBox | None) -> TurnOptions:
    uses_tools = toolbox is not None and model.capabilities.tools
    return TurnOptions(
        recovery_line=settings.recovery_line,
        max_tokens=settings.max_reply_tokens,
        first_token_timeout=settings.llm_first_token_timeout_s,
        stall_timeout=settings.llm_stall_timeout_s,
        tools=tuple(toolbox.specs(transfer_call=bool(settings.transfer_number)))
        if uses_tools and toolbox is not None else (),
        filler_line=settings.filler_line,
        filler_after_s=settings.filler_after_ms / 1000,
        tool_error_line=settings.tool_error_line,
        max_tool_rounds=settings.max_tool_rounds,
        goodbye_line=settings.goodbye_line,
        detect_goodbye=is_agent_goodbye,
        transfer_to=settings.transfer_number or "",
        first_clause_words=settings.first_clause_words,
    )


@dataclass
class Guess:
    """A turn started on an interim transcript; it speaks only if the final says the same."""

    utterance_id: str
    said: str  # normalized text of the interim
    turn: AgentTurn
    task: asyncio.Task[Any]


class AgentVoice:
    def __init__(self, call_id: str, bus: CallBus, settings: BrainSettings, model: ChatModel,
                 toolbox: ToolBox | None, history: Conversation, state: TurnState,
                 report: Callable[[object], Awaitable[None]]) -> None:
        self.call_id = call_id
        self.bus = bus
        self.settings = settings
        self.model = model
        self.toolbox = toolbox if model.capabilities.tools else None
        self.options = turn_options(settings, model, toolbox)
        self.history = history
        self.state = state  # read only: the session owns it
        self.report = report  # the session's dispatch: what the voice did is an event there
        self.turn: AgentTurn | None = None
        self.turn_id = ""
        self.greeted = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._unwritten: dict[str, AgentTurn] = {}
        self._guess: Guess | None = None
        self._discarded = 0
        self._tracer = tracer("brain")
        self.trace_context: Any = None  # the call's trace: spans without a transcript hang off it

    @property
    def ended(self) -> bool:
        """The call is over: say nothing more."""
        return self.state.ended

    # -- saying things ------------------------------------------------------------------------

    async def publish(self, chunk: ReplyChunk) -> None:
        if self.ended:
            return
        await self.report(ChunkOut(chunk.turn_id, chunk.seq, chunk.text, chunk.final, chunk.kind))
        await self.bus.publish(chunk, subjects.reply(self.call_id), headers=inject_headers())

    async def say_line(self, text: str, kind: Any, in_reply_to: str = "") -> str:
        """A fixed line (greeting, re-prompt, goodbye, canned reply) as a one-chunk turn."""
        turn_id = new_turn_id()
        chunk = ReplyChunk(call_id=self.call_id, turn_id=turn_id, seq=0, text=text, final=True, kind=kind,
                           in_reply_to=in_reply_to, timing=TurnTiming(first_chunk_at=now()))
        if kind == "greeting":
            self.history.add_greeting(text, turn_id)
        else:
            self.history.add_agent(text, turn_id)
        attributes = {"call.id": self.call_id, "turn.id": turn_id, "turn.kind": kind}
        with self._tracer.start_as_current_span(kind, context=self.trace_context, attributes=attributes):
            await self.publish(chunk)
        return turn_id

    @property
    def running(self) -> bool:
        """An LLM turn is being generated (not counting a held guess)."""
        task = self._task
        return task is not None and not task.done() and not task.cancelling()

    def cancel(self) -> str:
        """Stop generating the current turn; its id if it was still running, else ""."""
        if not self.running:
            return ""
        assert self._task is not None
        self._task.cancel()
        return self.turn_id

    def start_turn(self, *, in_reply_to: str, timing: TurnTiming, parent: Any = None, held: bool = False,
                   messages: list[dict[str, Any]] | None = None,
                   extra: dict[str, Any] | None = None) -> tuple[AgentTurn, asyncio.Task[Any]]:
        turn = AgentTurn(call_id=self.call_id, turn_id=new_turn_id(), model=self.model, messages=messages or [],
                         publish=self.publish, timing=timing, options=self.options, in_reply_to=in_reply_to,
                         toolbox=self.toolbox, held=held, tracer=self._tracer)
        turn.extra.update(extra or {})
        if self._discarded and not held:
            turn.extra["preemptive"], self._discarded = "discarded", 0
        self._unwritten[turn.turn_id] = turn
        task = self.bus.spawn(self._answer(turn, parent, from_history=messages is None), f"turn-{turn.turn_id}")
        if not held:
            self.turn, self.turn_id, self._task = turn, turn.turn_id, task
        return turn, task

    async def _answer(self, turn: AgentTurn, parent: Any, from_history: bool) -> None:
        attributes = {"call.id": self.call_id, "turn.id": turn.turn_id, "utterance.id": turn.in_reply_to}
        context = parent if parent is not None else self.trace_context
        with self._tracer.start_as_current_span("turn", context=context, attributes=attributes) as span:
            await wait_briefly(self.greeted, self.settings.tts_ready_timeout_s + 1.0)
            if from_history:  # taken now: the greeting comes first even when the caller spoke first
                turn.messages = self.history.messages()
            try:
                await turn.run()
            except Exception:
                await self.report(TurnDone(turn.turn_id, failed=True))
                raise
            finally:
                if not self.state.sent_chunks(turn.turn_id):
                    self._unwritten.pop(turn.turn_id, None)  # nothing was said: nothing to remember
                span.set_attribute("turn.outcome", turn.outcome)
                span.set_attribute("turn.chunks", len(turn.spoken))
                for name, ms in turn.timing.stages_ms().items():
                    span.set_attribute(f"latency.{name}_ms", ms)
                if not self.bus.closed and not turn.held:  # a discarded guess was never a turn
                    self.bus.spawn(self._report(turn), f"report-{turn.turn_id}")
        await self.report(TurnDone(turn.turn_id, turn.final_kind, turn.text, turn.end_reason, turn.transfer_to))

    async def _report(self, turn: AgentTurn) -> None:
        event = CallEvent(call_id=self.call_id, name=TURN_LLM, turn_id=turn.turn_id,
                          timing=turn.timing.model_copy(), data=turn.metrics())
        await self.bus.publish(event, subjects.event(self.call_id))
        for usage in turn_usages(turn.round_stats)[1:]:  # another model consumed tokens in this turn too
            event = CallEvent(call_id=self.call_id, name=LLM_USAGE, turn_id=turn.turn_id,
                              data={"usage": usage_data(usage)})
            await self.bus.publish(event, subjects.event(self.call_id))
        for tool in turn.tool_reports:
            event = CallEvent(call_id=self.call_id, name=TURN_TOOL, turn_id=turn.turn_id, data=tool)
            await self.bus.publish(event, subjects.event(self.call_id))

    def remember(self, turn_id: str, how: str) -> None:
        """A turn stopped speaking: write it into the history as the caller heard it."""
        cut = how in CUT
        turn = self._unwritten.pop(turn_id, None)
        if turn is not None and cut and not self.state.played(turn_id) and not any(r.calls for r in turn.rounds):
            log.debug("call %s: turn %s cut before any of it played; not in the history", self.call_id, turn_id)
        elif turn is not None:
            turn.remember(self.history, self.state.heard_seq(turn_id) if cut else None)
        elif cut:
            self.history.replace_agent(turn_id, self.state.heard_text(turn_id))

    # -- preemptive generation ----------------------------------------------------------------

    @property
    def guessing(self) -> bool:
        return self._guess is not None

    def guess(self, transcript: Transcript, parent: Any) -> None:
        """Start generating on an interim transcript, held until the final confirms it."""
        said = normalize(transcript.text)
        current = self._guess
        if current is not None and current.utterance_id == transcript.utterance_id and current.said == said:
            return
        self.discard_guess()
        if self.state.ending or self.ended or self.running:
            return
        timing = TurnTiming(speech_ended_at=transcript.speech_ended_at, stt_provider=transcript.provider)
        turn, task = self.start_turn(in_reply_to=transcript.utterance_id, timing=timing, parent=parent,
                                     held=True, messages=self.history.messages_with_caller(transcript.text))
        self._guess = Guess(transcript.utterance_id, said, turn, task)

    def take_guess(self, transcript: Transcript) -> Guess | None:
        """The running guess if the final says the same (normalized); any other is discarded."""
        guess, self._guess = self._guess, None
        if guess is None:
            return None
        if (guess.utterance_id == transcript.utterance_id and guess.said == normalize(transcript.text)
                and not guess.task.done()):
            return guess
        self._drop(guess)
        return None

    def discard_guess(self) -> None:
        guess, self._guess = self._guess, None
        if guess is not None:
            self._drop(guess)

    def _drop(self, guess: Guess) -> None:
        guess.task.cancel()
        self._unwritten.pop(guess.turn.turn_id, None)
        self._discarded += 1
        log.debug("call %s: preemptive turn for %r discarded", self.call_id, guess.said)

    async def keep_guess(self, guess: Guess, transcript: Transcript) -> None:
        """The final matched: the guess becomes the turn and speaks what it has so far.

        It saved the caller min(its head start, its time to a first chunk): without it the first
        chunk would have come that much later after the final transcript.
        """
        turn = guess.turn
        self.turn, self.turn_id, self._task = turn, turn.turn_id, guess.task
        started, confirmed = turn.timing.llm_started_at, now()
        ready = turn.first_ready_at or confirmed
        turn.extra["preemptive"] = "kept"
        turn.extra["head_start_ms"] = round((confirmed - started) * 1000, 1)
        turn.extra["preemptive_saved_ms"] = round((min(ready, confirmed) - started) * 1000, 1)
        await turn.release(transcript)

    def stop(self) -> None:
        """The call is over (or goes on elsewhere): stop generating and guessing, at once."""
        self.discard_guess()
        self.cancel()
