"""The caller talking while the agent has the turn.

- `BargeIn`: the caller talks over the agent. First the agent pauses (`turn.paused`): the edge
  clears the phone's buffer and keeps the audio, so the caller stops hearing the agent within
  `barge_in_min_ms` of speech without anything being lost. If the words are a backchannel or a
  noise, it resumes (`turn.resumed`): the edge plays it on from where it stopped. If
  they are real words (or long speech), it is an interruption: the interrupt control goes out
  (the edge drops the audio, TTS stops), the LLM stream is cancelled and the agent's turn is cut
  to what the caller heard; a `turn.barge_in` event records it.
- `ReplyHold`: the caller starts talking again before any of the reply went out. Their words
  usually continue a turn the STT ended too early ("I'd like to book a table ... for Tuesday"):
  the reply is held, and the final transcript replaces it. A cough or an "um" (no words, or no
  transcript within `resume_after_s` of the speech ending) lets it go out after all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.events import TURN_BARGE_IN, TURN_PAUSED, TURN_RESUMED
from ringline.contracts.messages import CallEvent, Control, now
from ringline.contracts.runtime import CallBus

from .speaking import SpeakingTracker
from .turn import AgentTurn
from .voice import AgentVoice

log = logging.getLogger("ringline.brain.overlap")


class Later:
    """One pending call of `action` after a delay; starting it again replaces the pending one."""

    def __init__(self, bus: CallBus, action: Callable[[], Awaitable[Any]], name: str) -> None:
        self.bus = bus
        self.action = action
        self.name = name
        self._task: asyncio.Task[Any] | None = None

    def start(self, delay: float) -> None:
        self.cancel()
        self._task = self.bus.spawn(self._run(delay), self.name)

    def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _run(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._task = None  # from here on a cancel must not stop the action
        await self.action()


class BargeIn:
    """Pause, interrupt or resume the agent while the caller talks over it.

    `pause` stops the caller hearing the agent at once (the edge clears the phone and keeps the
    audio; TTS and the LLM go on); `__call__` makes it an interruption; `resume` lets the agent
    go on from the last mark the caller heard. A paused agent whose caller stopped talking
    resumes by itself after `resume_after_s` unless words (or `__call__`) come first.
    """

    def __init__(self, call_id: str, bus: CallBus, speech: SpeakingTracker, voice: AgentVoice,
                 resume_after_s: float = 1.5) -> None:
        self.call_id = call_id
        self.bus = bus
        self.speech = speech
        self.voice = voice
        self.resume_after_s = resume_after_s
        self.owed = False  # the agent was cut off: the caller's next words get an answer
        self.paused_at = 0.0  # when the agent was paused (0: it is not)
        self._pause_started_at = 0.0  # the onset of the speech that paused it
        self._timer = Later(bus, lambda: self.resume("no words"), "resume-agent")

    @property
    def paused(self) -> bool:
        return bool(self.paused_at) and self.speech.paused

    async def pause(self, started_at: float, voiced_ms: float, utterance_id: str) -> bool:
        """Stop the caller hearing the agent now; False when it was not speaking (or says goodbye)."""
        if self.voice.ended or self.voice.ending:
            return False
        turns = [t for t in self.speech.speaking_turns() if not t.paused]
        if not turns:
            return False
        paused_at = now()
        for turn in turns:
            control = Control(call_id=self.call_id, action="pause", turn_id=turn.turn_id, reason="caller speech")
            await self.bus.publish(control, subjects.control(self.call_id))
            self.speech.pause(turn.turn_id)
        if not self.paused_at:
            self.paused_at, self._pause_started_at = paused_at, started_at
        # A backstop for a pause that nothing decides (a noise the STT reports no end of): more
        # speech cancels it, the end of the speech starts the usual, shorter wait.
        self._timer.start(2 * self.resume_after_s)
        reaction_ms = round((paused_at - started_at) * 1000, 1) if started_at else None
        for turn in turns:
            data = {"reaction_ms": reaction_ms, "voiced_ms": voiced_ms, "utterance_id": utterance_id,
                    "heard_seq": turn.heard_seq}
            log.info("call %s: paused turn %s (%.0f ms voiced) after %s ms", self.call_id, turn.turn_id,
                     voiced_ms, reaction_ms)
            event = CallEvent(call_id=self.call_id, name=TURN_PAUSED, turn_id=turn.turn_id, data=data)
            await self.bus.publish(event, subjects.event(self.call_id))
        return True

    async def resume(self, why: str) -> bool:
        """It was only a backchannel or a noise: the agent goes on. False when nothing was paused."""
        self._timer.cancel()
        turns = [t for t in self.speech.speaking_turns() if t.paused]
        paused_at, self.paused_at = self.paused_at, 0.0
        if not turns:
            return False
        paused_ms = round((now() - paused_at) * 1000, 1) if paused_at else None
        for turn in turns:
            self.speech.resume(turn.turn_id)
            control = Control(call_id=self.call_id, action="resume", turn_id=turn.turn_id, reason=why)
            await self.bus.publish(control, subjects.control(self.call_id))
            log.info("call %s: turn %s resumes after %s ms (%s)", self.call_id, turn.turn_id, paused_ms, why)
            event = CallEvent(call_id=self.call_id, name=TURN_RESUMED, turn_id=turn.turn_id,
                              data={"paused_ms": paused_ms, "why": why, "heard_seq": turn.heard_seq})
            await self.bus.publish(event, subjects.event(self.call_id))
        return True

    def caller_started(self) -> None:
        """More speech: whatever it is decides, not the clock."""
        self._timer.cancel()

    def caller_stopped(self) -> None:
        """The caller stopped talking: without words soon, the paused agent goes on."""
        if self.paused:
            self._timer.start(self.resume_after_s)

    async def __call__(self, trigger: str, started_at: float, voiced_ms: float, utterance_id: str) -> bool:
        """Stop every turn the agent is speaking; False when it was not speaking (or says goodbye)."""
        self._timer.cancel()
        paused_at, pause_started_at, self.paused_at = self.paused_at, self._pause_started_at, 0.0
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
        if paused_at:  # the caller stopped hearing the agent when it paused
            interrupted_at, started_at = paused_at, pause_started_at or started_at
        for turn in speaking:
            heard = self.speech.interrupt(turn.turn_id)  # writes the history: only the part heard
            data: dict[str, Any] = {
                "heard_text": heard,
                "reaction_ms": round((interrupted_at - started_at) * 1000, 1) if started_at else None,
                "voiced_ms": voiced_ms,
                "trigger": trigger,
                "paused": bool(paused_at),
                "utterance_id": utterance_id,
                "chunks_sent": self.speech.sent_chunks(turn.turn_id),
                "chunks_heard": self.speech.heard_seq(turn.turn_id) + 1,
            }
            if paused_at:
                data["decided_ms"] = round((now() - paused_at) * 1000, 1)
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
        self._timer = Later(bus, self.let_go, "resume-reply")

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
            self._timer.start(self.resume_after_s)

    async def let_go(self) -> None:
        """Publish the held reply now (the caller only coughed or said "um")."""
        turn, self.turn = self.turn, None
        self._timer.cancel()
        if turn is not None and turn is self.voice.turn and self.voice.running:
            await turn.resume()

    def drop(self) -> None:
        """Forget it: the caller's new words replace the reply (the new turn cancels it)."""
        self.turn = None
        self._timer.cancel()

