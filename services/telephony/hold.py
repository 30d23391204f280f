"""No call waits on nobody: a call that some stage has not claimed yet hears why.

Stages claim calls durably (they find them in the live-call registry even when they come up
after the call began), but a stage can still be late: every replica loading its models, all of
them restarting. When `hold_after_s` passes without every stage announcing `stage.ready`, the
edge plays a short hold line (pre-rendered at start-up, like the busy line) and puts `call.hold`
on the record; when `give_up_s` passes, it apologises and ends the call ("no <stage> replica
claimed the call"). A stage that claims in between cancels nothing already said; the agent's
greeting follows once the brain and TTS are there.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ringline.contracts import subjects
from ringline.contracts.events import CALL_BUSY, CALL_HOLD, CALL_REFUSED, STAGE_READY
from ringline.contracts.messages import AgentAudio, CallEvent
from ringline.contracts.runtime import CallBus

from .busy import BusyLine

log = logging.getLogger("ringline.telephony.hold")

HOLD_TURN = "hold"
SORRY_TURN = "sorry"
STAGES = ("stt", "brain", "tts", "memory")


@dataclass
class Waiting:
    """Which stages have claimed the call. Pure."""

    ready: set[str] = field(default_factory=set)
    refused: bool = False  # a stage had no room: the busy line speaks for the edge, not the hold line

    def note(self, event: CallEvent) -> None:
        if event.name == STAGE_READY:
            self.ready.add(str(event.data.get("stage", "")))
        elif event.name in (CALL_REFUSED, CALL_BUSY):
            self.refused = True

    def missing(self) -> list[str]:
        if self.refused:
            return []
        return [stage for stage in STAGES if stage not in self.ready]


class HoldWatch:
    """One call's wait for its stages, with the hold line and the apology."""

    def __init__(self, bus: CallBus, hold: BusyLine, sorry: BusyLine, play: Callable[[AgentAudio], None],
                 hang_up: Callable[[str], Awaitable[None]], hold_after_s: float, give_up_s: float) -> None:
        self.bus = bus
        self.hold = hold
        self.sorry = sorry
        self.play = play
        self.hang_up = hang_up
        self.hold_after_s = hold_after_s
        self.give_up_s = give_up_s
        self.waiting = Waiting()
        self.held = False

    def start(self) -> None:
        self.bus.spawn(self._watch(), "hold")

    async def on_event(self, event: CallEvent) -> None:
        self.waiting.note(event)

    def _say(self, line: BusyLine, turn: str) -> None:
        if line.audio:
            self.play(line.as_turn(self.bus.call_id, turn))

    async def _watch(self) -> None:
        call_id = self.bus.call_id
        await asyncio.sleep(self.hold_after_s)
        missing = self.waiting.missing()
        if not missing:
            return
        self.held = True
        log.warning("call %s: no %s replica has claimed it after %.1f s; playing the hold line",
                    call_id, ", ".join(missing), self.hold_after_s)
        await self.bus.publish(CallEvent(call_id=call_id, name=CALL_HOLD, data={"stages": missing,
                                                                                "line": self.hold.text}),
                               subjects.event(call_id))
        self._say(self.hold, HOLD_TURN)
        await asyncio.sleep(max(0.0, self.give_up_s - self.hold_after_s))
        missing = self.waiting.missing()
        if not missing:
            return
        log.error("call %s: no %s replica claimed it within %.0f s; apologising and ending the call",
                  call_id, ", ".join(missing), self.give_up_s)
        await self.bus.publish(CallEvent(call_id=call_id, name=CALL_HOLD, data={"stages": missing, "gave_up": True,
                                                                                "line": self.sorry.text}),
                               subjects.event(call_id))
        self._say(self.sorry, SORRY_TURN)
        await asyncio.sleep(self.sorry.seconds + 0.3)  # the phone plays it in real time
        await self.hang_up(f"no {', '.join(missing)} replica claimed the call")
