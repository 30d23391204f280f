"""What the agent's side does to a call at the edge: the control messages on `call.<id>.control`
(interrupt, pause, resume, hang-up, transfer) and the hang-ups the edge decides itself (the
busy line or a message taken instead, the hold line's apology). A part of `CallStream`, kept apart so the socket loop
stays a socket loop; the attributes below are the stream's."""

from __future__ import annotations

import asyncio
import logging

from opentelemetry import trace

from ringline.contracts import subjects
from ringline.contracts.agents import WatchedAgentBook
from ringline.contracts.events import CALL_TRANSFER
from ringline.contracts.messages import CallEvent, CallStart, Control
from ringline.contracts.runtime import CallBus

from .busy_message import BusyMessage
from .playout import Playout
from .registry import CLOSE_NORMAL, CallRegistry
from .settings import TelephonySettings
from .twilio_rest import TwilioCalls, move_call

log = logging.getLogger("ringline.telephony.stream")


class AgentActions:
    call_id: str
    agent_id: str
    agents: WatchedAgentBook | None
    settings: TelephonySettings
    registry: CallRegistry
    twilio: TwilioCalls | None
    playout: Playout | None
    bus: CallBus | None
    _span: trace.Span | None
    _ended: bool
    _ignored_target: bool
    _hangup: asyncio.Task[None] | None
    _transfer: bool
    _stopping: asyncio.Event
    _close: tuple[int, str] | None
    _end_reason: str

    def request_close(self, code: int, reason: str, end_reason: str | None = None, *, now: bool = True) -> None:
        raise NotImplementedError

    def _busy_message(self, bus: CallBus, call: CallStart) -> BusyMessage | None:
        """The agent's own message-taking for a call no brain or TTS replica has room for, when its
        voicemail says `when_busy` (else the busy line)."""
        if self.agents is None or self.playout is None:
            return None
        agent = self.agents.book.agent(call.agent_id)
        if not agent.voicemail.when_busy:
            return None
        announcer = self.registry.announcer

        async def close_to(stages: list[str]) -> None:
            if announcer is not None:
                await announcer.close_to(call.call_id, stages)

        return BusyMessage(bus, agent.voicemail, self.registry.message_lines, self.playout.audio, close_to)

    def _transfer_number(self, requested: str) -> str:
        """Where a transfer may go: the call's agent's `transfer_number` (else the edge's own),
        never a number from the bus. Empty: this call cannot be transferred."""
        agent = self.agents.book.get(self.agent_id) if self.agents is not None else None
        allowed = (agent.transfer_number if agent is not None else None) or self.settings.transfer_number or ""
        if requested and requested != allowed and not self._ignored_target:
            self._ignored_target = True
            log.warning("call %s: transfer target %r from the bus ignored; agent %s transfers only to %s",
                        self.call_id, requested, self.agent_id, allowed or "nowhere (no transfer_number)")
        return allowed

    async def _on_control(self, msg: Control) -> None:
        if self._ended:
            return
        if msg.call_id != self.call_id:  # published on this call's subject, about another call
            log.warning("call %s: ignored a %s control message naming call %r", self.call_id, msg.action,
                        msg.call_id[:64])
            return
        if msg.action == "interrupt" and self.playout is not None:
            dropped = self.playout.interrupt(msg.turn_id)
            log.info("call %s: interrupt of turn %s (%d queued messages dropped)",
                     self.call_id, msg.turn_id or "*", dropped)
        elif msg.action == "pause" and self.playout is not None:
            if self.playout.pause(msg.turn_id):
                log.info("call %s: pause of turn %s", self.call_id, msg.turn_id or "*")
        elif msg.action == "resume" and self.playout is not None:
            requeued = self.playout.resume(msg.turn_id)
            log.info("call %s: resume of turn %s (%d messages queued again)",
                     self.call_id, msg.turn_id or "*", requeued)
        elif msg.action == "hangup" and self._hangup is None:
            log.info("call %s: agent hangs up (%s)", self.call_id, msg.reason or "no reason given")
            self.request_close(CLOSE_NORMAL, "agent hung up", "agent hung up", now=False)
            self._hangup = asyncio.create_task(self._agent_hangup(), name=f"{self.call_id}:hangup")
        elif msg.action == "transfer" and self._hangup is None:
            target = self._transfer_number(msg.target)
            log.info("call %s: agent transfers the call to %s", self.call_id, target or "(no number)")
            self.request_close(CLOSE_NORMAL, "call transferred", f"transfer to {target}", now=False)
            self._transfer = True
            self._hangup = asyncio.create_task(self._agent_transfer(target), name=f"{self.call_id}:transfer")

    async def _busy_hang_up(self, reason: str) -> None:
        if self._hangup is None and not self._ended:
            self.request_close(CLOSE_NORMAL, "busy", reason, now=False)
            self._hangup = asyncio.current_task()
            await self._agent_hangup()

    async def _agent_hangup(self) -> None:
        """Complete the call at Twilio (when configured), then close the stream either way."""
        try:
            if self.twilio is not None:
                await self.twilio.complete(self.call_id)
        finally:
            self._stopping.set()

    async def _agent_transfer(self, target: str) -> None:
        """Move the call at Twilio (when configured), record the outcome, then close the stream."""
        try:
            outcome = await move_call(self.twilio, self.call_id, target)
            if self._close == (CLOSE_NORMAL, "call transferred"):  # not ended by the caller meanwhile
                self._end_reason = f"transferred to {target}" if outcome == "transferred" else \
                    "agent hung up (transfer not possible)"
            event = CallEvent(call_id=self.call_id, name=CALL_TRANSFER, data={"target": target, "outcome": outcome})
            if self.bus is not None:
                await self.bus.publish(event, subjects.event(self.call_id))
            if self._span is not None:
                self._span.add_event(CALL_TRANSFER, {"transfer.target": target, "transfer.outcome": outcome})
        finally:
            self._stopping.set()
