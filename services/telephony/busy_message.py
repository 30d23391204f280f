"""A message instead of the busy line: when no brain or TTS replica has room for a call and its
agent says `voicemail.when_busy`, the edge itself takes the message.

Nothing here needs the stage that is full. The prompt and the goodbye are the agent's own lines,
rendered with the local Piper voice (at start-up for every agent that asks, like the busy line).
The STT still serves the call: its speech events say when the caller talks and stops, its final
transcripts are the message's text. The memory service still serves it: `voicemail.started`
makes it keep the caller's audio, `voicemail.message` puts the message on the record, exactly as
when the brain takes one. The brain and TTS are closed out of the call in the live-call registry,
so a replica that frees up meanwhile does not greet the caller in the middle of their message.

A full STT (nobody would hear when the caller is done) or a full memory (nobody would keep the
message) gets the busy line instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ringline.contracts import subjects
from ringline.contracts.agent_options import Voicemail
from ringline.contracts.events import VOICEMAIL_MESSAGE, VOICEMAIL_STARTED
from ringline.contracts.messages import AgentAudio, CallEvent, SpeechEvent, Transcript
from ringline.contracts.runtime import CallBus

from .busy import BusyLine

log = logging.getLogger("ringline.telephony.busy_message")

STAGES_IT_REPLACES = ("brain", "tts")  # a message is taken when one of these is full
NOTHING_SAID_S = 10.0  # after the prompt, this long without a word ends an empty message (as the brain's)
LAST_WORDS_S = 2.0  # after the caller stopped, how long the last words' transcript may take
POLL_S = 0.1
MESSAGE_TURN, GOODBYE_TURN = "busy-message", "busy-message-goodbye"


class LineBook:
    """The agents' prompts and goodbyes as audio, rendered once per edge and text."""

    def __init__(self) -> None:
        self.lines: dict[str, BusyLine] = {}

    def line(self, text: str) -> BusyLine:
        return self.lines.setdefault(text, BusyLine(text))

    async def ready(self, text: str) -> BusyLine:
        """The line for `text`, rendered now if start-up has not done it (about a second)."""
        line = self.line(text)
        if not line.audio:
            await line.render()
        return line


@dataclass
class Listening:
    """What the caller has said since the prompt. Pure: `done` decides when the message is over."""

    started: float  # when the prompt has played (monotonic)
    options: Voicemail
    speaking: bool = False
    heard_at: float | None = None  # the caller's voice, last
    stopped_at: float | None = None
    texts: dict[str, str] = field(default_factory=dict)  # utterance id -> final text, in order said
    pending: set[str] = field(default_factory=set)  # utterances stopped without a final text yet

    def on_speech(self, event: SpeechEvent, at: float) -> None:
        self.heard_at = at
        self.speaking = event.kind != "stopped"
        if event.kind == "stopped":
            self.stopped_at = at
            self.pending.add(event.utterance_id)

    def on_transcript(self, transcript: Transcript) -> None:
        if transcript.is_final:
            self.pending.discard(transcript.utterance_id)
            if transcript.text.strip():
                self.texts[transcript.utterance_id] = transcript.text.strip()

    def done(self, now: float) -> str | None:
        """Why the message is over, or None while the caller may still be talking."""
        if now - self.started >= self.options.max_s:
            return "max length"
        if self.heard_at is None:
            return "nothing said" if now - self.started >= NOTHING_SAID_S else None
        if self.speaking or now - self.heard_at < self.options.silence_s:
            return None
        waited = now - (self.stopped_at or self.heard_at)
        return None if self.pending and waited < self.options.silence_s + LAST_WORDS_S else "silence"

    @property
    def text(self) -> str:
        return " ".join(self.texts.values())


class BusyMessage:
    """Takes one call's message at the edge (see the module docstring)."""

    def __init__(self, bus: CallBus, options: Voicemail, lines: LineBook, play: Callable[[AgentAudio], None],
                 close_to: Callable[[list[str]], Awaitable[None]] | None = None) -> None:
        self.bus = bus
        self.options = options
        self.lines = lines
        self.play = play
        self.close_to = close_to
        self.active = False  # the stream drops the agent's audio while this is on
        self._listening: Listening | None = None

    @staticmethod
    def replaces(stage: str) -> bool:
        return stage in STAGES_IT_REPLACES

    async def take(self, stage: str, reason: str) -> str:
        """Prompt, listen, goodbye; the message on the bus. Returns why the call ends."""
        self.active = True
        call_id = self.bus.call_id
        why = f"busy: no {stage} capacity ({reason})"
        if self.close_to is not None:
            await self.close_to(list(STAGES_IT_REPLACES))
        await self.bus.subscribe(subjects.speech(call_id), self._on_speech)
        await self.bus.subscribe(subjects.transcript(call_id), self._on_transcript)
        await self._event(VOICEMAIL_STARTED, {"reason": why})
        prompt = await self.lines.ready(self.options.prompt)
        # The message's clock starts when the prompt has played; a caller who starts over it is heard.
        listening = self._listening = Listening(time.monotonic() + prompt.seconds + 0.3, self.options)
        await self._say(prompt, MESSAGE_TURN)
        while (ended := listening.done(time.monotonic())) is None:
            await asyncio.sleep(POLL_S)
        duration = round(max(0.0, (listening.heard_at or listening.started) - listening.started), 1)
        log.info("call %s: message taken at the edge (%s, %.1f s, %d words)", call_id, ended, duration,
                 len(listening.text.split()))
        await self._event(VOICEMAIL_MESSAGE, {"text": listening.text, "duration_s": duration, "reason": why,
                                              "ended": ended, "taken_by": "edge"})
        await self._say(await self.lines.ready(self.options.goodbye), GOODBYE_TURN)
        return f"{why}: message taken"

    async def _say(self, line: BusyLine, turn_id: str) -> None:
        if line.audio:
            self.play(line.as_turn(self.bus.call_id, turn_id))
            await asyncio.sleep(line.seconds + 0.3)  # the phone plays it in real time

    async def _on_speech(self, event: SpeechEvent) -> None:
        if self._listening is not None:
            self._listening.on_speech(event, time.monotonic())

    async def _on_transcript(self, transcript: Transcript) -> None:
        if self._listening is not None:
            self._listening.on_transcript(transcript)

    async def _event(self, name: str, data: dict[str, object]) -> None:
        await self.bus.publish(CallEvent(call_id=self.bus.call_id, name=name, data=data),
                               subjects.event(self.bus.call_id))
