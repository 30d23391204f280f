"""The caller talking while the agent has the turn.

- `BargeIn`: the caller talks over the agent. The interrupt control goes out first (the edge
  clears the phone's buffer, TTS stops), then the LLM stream is cancelled and the agent's turn
  is cut to what the caller heard; a `turn.barge_in` event records it.
- `ReplyHold`: the caller starts talking again before any of the reply went out. Their words
  usually continue a turn the STT ended too early ("I'd like to book a table ... for Tuesday"):
  the reply is held, and the final transcript replaces it. A cough or an "um" (no words, or no
  transcript within `resume_after_s` of the speech ending) lets it go out after all.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.events import TURN_BARGE_IN
from ringline.contracts.messages import CallEvent, Control, now
from ringline.contracts.runtime import CallBus

from .speaking import SpeakingTracker
from .turn import AgentTurn
from .voice import AgentVoice

log = logging.getLogger("ringline.brain.overlap")


class BargeIn:
    def __init__(self, call_id: str, bus: CallBus, speech: SpeakingTracker, voice: AgentVoice) -> None:
        self.call_id = call_id
        self.bus = bus
        self.speech = speech
        self.voice = voice
        self.owed = False  # the agent was cut off: the caller's next words get an answer

    async def __call__(self, trigger: str, started_at: float, voiced_ms: float, utterance_id: str) -> bool:
        """Stop every turn the agent is speaking; False when it was not speaking (or says goodbye)."""
        if self.voice.ended or self.voice.ending:
            return False
        speaking = self.speech.speaking_turns()
        if not speaking:
            return False
        interrupted_at = now()
        for turn in speaking:
            control = Control(call_id=self.call_id, action="interrupt", turn_id=turn.turn_id,
                              reason=f"barge-in ({trigger})")
            await self.bus.publish(control, subjects.control(self.call_id))
        self.owed = True
        self.voice.cancel()
        for turn in speaking:
            heard = self.speech.interrupt(turn.turn_id)  # writes the history: only the part heard
            data: dict[str, Any] = {
                "heard_text": heard,
                "reaction_ms": round((interrupted_at - started_at) * 1000, 1) if started_at else None,
                "voiced_ms": voiced_ms,
                "trigger": trigger,
                "utterance_id": utterance_id,
                "chunks_sent": self.speech.sent_chunks(turn.turn_id),
                "chunks_heard": self.speech.heard_seq(turn.turn_id) + 1,
            }
            log.info("call %s: barge-in (%s, %.0f ms voiced) on turn %s after %s ms", self.call_id, trigger,
                     voiced_ms, turn.turn_id, data["reaction_ms"])
            event = CallEvent(call_id=self.call_id, name=TURN_BARGE_IN, turn_id=turn.turn_id, data=data)
            await self.bus.publish(event, subjects.event(self.call_id))
        return True


class ReplyHold:
    def __init__(self, call_id: str, bus: CallBus, voice: AgentVoice, resume_after_s: float) -> None:
        self.call_id = call_id
        self.bus = bus
        self.voice = voice
        self.resume_after_s = resume_after_s
        self.turn: AgentTurn | None = None
        self._timer: asyncio.Task[Any] | None = None

    @property
    def active(self) -> bool:
        return self.turn is not None

    def caller_started(self) -> None:
        """Hold the reply being prepared, if none of it went out yet."""
        turn = self.voice.turn
        if turn is None or not self.voice.running or self.voice.ending or turn is self.turn:
            return
        if turn.hold():
            self.turn = turn
            log.info("call %s: the caller goes on talking; reply %s held", self.call_id, turn.turn_id)

    def caller_stopped(self) -> None:
        """Let the reply go if no words come soon."""
        if self.turn is not None:
            self._cancel_timer()
            self._timer = self.bus.spawn(self._later(), "resume-reply")

    async def let_go(self) -> None:
        """Publish the held reply now (the caller only coughed or said "um")."""
        turn, self.turn = self.turn, None
        self._cancel_timer()
        if turn is not None and turn is self.voice.turn and self.voice.running:
            await turn.resume()

    def drop(self) -> None:
        """Forget it: the caller's new words replace the reply (the new turn cancels it)."""
        self.turn = None
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()

    async def _later(self) -> None:
        await asyncio.sleep(self.resume_after_s)
        self._timer = None
        await self.let_go()
