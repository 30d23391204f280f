"""The brain's per-call session: greet, answer each finished caller turn, stop on hang-up.

Subscriptions (all on the call's own subjects):
- `event`: the TTS stage saying it is ready, so the greeting is not spoken into the void;
- `transcript`: a final, end-of-turn transcript starts an agent turn (cancelling one in flight);
- `control`: hang-up / call ended cancel everything; an interrupt cancels the turn it names.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from faststream.nats import NatsMessage

from ringline.contracts import subjects
from ringline.contracts.messages import CallEvent, CallStart, Control, ReplyChunk, Transcript, TurnTiming
from ringline.contracts.runtime import STAGE_QUERY, STAGE_READY, CallBus, CallSession, extract_context, inject_headers, tracer

from .conversation import Conversation
from .llm.base import ChatModel
from .settings import BrainSettings
from .turn import AgentTurn, wait_briefly

log = logging.getLogger("ringline.brain.session")

END_ACTIONS = frozenset({"ended", "hangup"})


def new_turn_id() -> str:
    """A turn id safe inside marks and subjects (no ':' or '.')."""
    return uuid.uuid4().hex


class BrainSession(CallSession):
    def __init__(self, call: CallStart, bus: CallBus, settings: BrainSettings, model: ChatModel) -> None:
        super().__init__(call, bus)
        self.settings = settings
        self.model = model
        self.history = Conversation(settings.persona, settings.history_max_messages)
        self.ended = False
        self.greeting_turn_id = ""
        self.turn: AgentTurn | None = None
        self.turn_id = ""  # the agent turn being generated (or last generated)
        self._remembered: set[str] = set()
        self._tts_ready = asyncio.Event()
        self._greeted = asyncio.Event()
        self._greeting_task: asyncio.Task[Any] | None = None
        self._turn_task: asyncio.Task[Any] | None = None
        self._tracer = tracer("brain")

    async def start(self) -> None:
        # Events first: the TTS stage may announce itself the moment it claims the call.
        await self.bus.subscribe(subjects.event(self.call_id), self._on_event)
        await self.bus.subscribe(subjects.transcript(self.call_id), self._on_transcript)
        await self.bus.subscribe(subjects.control(self.call_id), self._on_control)
        # TTS may have announced itself before we subscribed: ask the owners to say so again.
        await self.bus.publish(CallEvent(call_id=self.call_id, name=STAGE_QUERY), subjects.event(self.call_id))
        self._greeting_task = self.bus.spawn(self._greet(), "greeting")

    async def close(self, reason: str) -> None:
        self.ended = True
        self._cancel_turn()
        if self._greeting_task is not None:
            self._greeting_task.cancel()

    # -- handlers ---------------------------------------------------------------------------

    async def _on_event(self, event: CallEvent) -> None:
        if event.name == STAGE_READY and event.data.get("stage") == "tts":
            self._tts_ready.set()

    async def _on_transcript(self, transcript: Transcript, msg: NatsMessage) -> None:
        if self.ended or not (transcript.is_final and transcript.end_of_turn):
            return
        if not transcript.text.strip():
            return
        superseded = self._cancel_turn()
        self.history.add_caller(transcript.text, transcript.utterance_id)
        if superseded:
            await self._interrupt(superseded, "caller spoke again")
        self._tts_ready.set()  # the caller is talking: greet (if not yet) without waiting
        parent = extract_context(msg.headers)
        turn_id = self.turn_id = new_turn_id()
        self._turn_task = self.bus.spawn(self._answer(transcript, turn_id, parent), f"turn-{turn_id}")

    async def _on_control(self, control: Control) -> None:
        if control.action in END_ACTIONS:
            log.info("call %s %s: brain stops", self.call_id, control.action)
            self.ended = True
            self._cancel_turn()
            if self._greeting_task is not None:
                self._greeting_task.cancel()
        elif control.action == "interrupt" and control.turn_id in ("", self.turn_id):
            self._cancel_turn()

    # -- greeting -----------------------------------------------------------------------------

    async def _greet(self) -> None:
        try:
            if not await wait_briefly(self._tts_ready, self.settings.tts_ready_timeout_s):
                log.info("call %s: no TTS ready event in %.1fs; greeting anyway",
                         self.call_id, self.settings.tts_ready_timeout_s)
            if self.ended:
                return
            self.greeting_turn_id = new_turn_id()
            chunk = ReplyChunk(
                call_id=self.call_id,
                turn_id=self.greeting_turn_id,
                seq=0,
                text=self.settings.greeting,
                final=True,
                kind="greeting",
            )
            with self._tracer.start_as_current_span("greeting", attributes={"call.id": self.call_id}):
                await self.bus.publish(chunk, subjects.reply(self.call_id), headers=inject_headers())
            self.history.add_greeting(self.settings.greeting, self.greeting_turn_id)
        finally:
            self._greeted.set()

    # -- agent turns --------------------------------------------------------------------------

    def _cancel_turn(self) -> str:
        """Cancel the turn being generated; its id if one was still running, else ""."""
        task = self._turn_task
        if task is None or task.done():
            return ""
        task.cancel()
        if self.turn is not None and self.turn.turn_id == self.turn_id:
            self._remember(self.turn)  # now, before the caller's next words join the history
        return self.turn_id

    def _remember(self, turn: AgentTurn) -> None:
        """Put what the agent said in a turn into the history, once."""
        if turn.turn_id not in self._remembered:
            self._remembered.add(turn.turn_id)
            self.history.add_agent(turn.text, turn.turn_id)

    async def _interrupt(self, turn_id: str, reason: str) -> None:
        """Tell TTS to drop the rest of a turn the brain abandoned mid-sentence."""
        control = Control(call_id=self.call_id, action="interrupt", turn_id=turn_id, reason=reason)
        await self.bus.publish(control, subjects.control(self.call_id))

    async def _answer(self, transcript: Transcript, turn_id: str, parent: Any) -> None:
        attributes = {"call.id": self.call_id, "turn.id": turn_id, "utterance.id": transcript.utterance_id}
        with self._tracer.start_as_current_span("turn", context=parent, attributes=attributes) as span:
            await wait_briefly(self._greeted, self.settings.tts_ready_timeout_s + 1.0)
            timing = TurnTiming(
                speech_ended_at=transcript.speech_ended_at,
                transcript_at=transcript.emitted_at,
                stt_provider=transcript.provider,
            )
            turn = AgentTurn(
                call_id=self.call_id,
                turn_id=turn_id,
                model=self.model,
                messages=self.history.messages(),
                publish=self._publish_chunk,
                timing=timing,
                in_reply_to=transcript.utterance_id,
                max_tokens=self.settings.max_reply_tokens,
                recovery_line=self.settings.recovery_line,
                first_token_timeout=self.settings.llm_first_token_timeout_s,
                stall_timeout=self.settings.llm_stall_timeout_s,
                tracer=self._tracer,
            )
            self.turn = turn
            try:
                await turn.run()
            finally:
                # Runs on cancellation too: remember what the caller may have heard.
                self._remember(turn)
                span.set_attribute("turn.outcome", turn.outcome)
                span.set_attribute("turn.chunks", len(turn.spoken))
                for name, ms in timing.stages_ms().items():
                    span.set_attribute(f"latency.{name}_ms", ms)
                if not self.bus.closed:
                    # A separate task: a cancelled turn can no longer await its own publish.
                    self.bus.spawn(self._report(turn), f"report-{turn_id}")

    async def _publish_chunk(self, chunk: ReplyChunk) -> None:
        await self.bus.publish(chunk, subjects.reply(self.call_id), headers=inject_headers())

    async def _report(self, turn: AgentTurn) -> None:
        event = CallEvent(
            call_id=self.call_id,
            name="turn.llm",
            turn_id=turn.turn_id,
            timing=turn.timing.model_copy(),
            data=turn.metrics(),
        )
        await self.bus.publish(event, subjects.event(self.call_id))
