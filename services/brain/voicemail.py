"""Taking a message: the agent cannot talk (busy, closed, over budget, caller not allowed).

The caller hears the agent's voicemail prompt, then everything they say is the message, until
they stop talking for `silence_s`, the message reaches `max_s`, or they hang up (the usual end:
whatever was said until then is the message). The agent says its voicemail goodbye and hangs up.

On the bus: `voicemail.started` (reason) when the prompt starts, so the memory service records
the caller's audio from then on, and `voicemail.message` (text, duration, reason) once the
message is complete. Turn-taking is off meanwhile: nothing the caller says interrupts the prompt
(the call's `TurnState.voicemail` says so; the session sends the caller's voice and words here).
The session runs it: `begin` (the prompt), then, once the prompt was heard, `listen`, `finish`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ringline.contracts import subjects
from ringline.contracts.agents import Voicemail as VoicemailOptions
from ringline.contracts.events import VOICEMAIL_MESSAGE, VOICEMAIL_STARTED
from ringline.contracts.messages import CallEvent, SpeechEvent, Transcript
from ringline.contracts.runtime import CallBus

from .voice import AgentVoice

log = logging.getLogger("ringline.brain.voicemail")

NOTHING_SAID_S = 10.0  # after the prompt, this long without a word ends an empty message


class VoicemailTaker:
    def __init__(self, bus: CallBus, voice: AgentVoice, options: VoicemailOptions) -> None:
        self.bus = bus
        self.voice = voice
        self.options = options
        self.reason = ""
        self.active = False
        self._parts: dict[str, str] = {}  # utterance id -> its final text, in the order said
        self._talking = False
        self._changed = asyncio.Event()
        self._listen_from = 0.0
        self._last_voice = 0.0
        self._published = False

    @property
    def text(self) -> str:
        return " ".join(part for part in self._parts.values() if part).strip()

    async def begin(self, reason: str) -> str:
        """Say the prompt; its turn id."""
        self.active, self.reason = True, reason
        await self._event(VOICEMAIL_STARTED, {"reason": reason})
        return await self.voice.say_line(self.options.prompt, "greeting")

    def carry_on(self, reason: str) -> None:
        """Listen on a call taken over after the prompt (the words before it are not here)."""
        self.active, self.reason = True, reason

    async def listen(self) -> None:
        """Until the caller stopped talking for `silence_s` or the message reached `max_s`."""
        self._listen_from = self._last_voice = time.monotonic()
        while not self.voice.ended:
            now = time.monotonic()
            if now - self._listen_from >= self.options.max_s:
                log.info("call %s: voicemail reached its %.0fs limit", self.bus.call_id, self.options.max_s)
                return
            quiet_for = self.options.silence_s if self._parts else max(NOTHING_SAID_S, self.options.silence_s)
            if not self._talking and now - self._last_voice >= quiet_for:
                return
            self._changed.clear()
            wait = min(quiet_for - (now - self._last_voice), self.options.max_s - (now - self._listen_from))
            try:
                await asyncio.wait_for(self._changed.wait(), timeout=max(0.05, wait))
            except TimeoutError:
                pass

    def take(self, message: SpeechEvent | Transcript) -> None:
        if isinstance(message, SpeechEvent):
            self.on_speech(message)
        else:
            self.on_transcript(message)

    def on_speech(self, event: SpeechEvent) -> None:
        self._talking = event.kind != "stopped"
        self._last_voice = time.monotonic()
        self._changed.set()

    def on_transcript(self, transcript: Transcript) -> None:
        if transcript.is_final and transcript.text.strip():
            self._parts[transcript.utterance_id or str(len(self._parts))] = transcript.text.strip()
            self._last_voice = time.monotonic()
            self._changed.set()

    async def finish(self) -> None:
        """Publish the message (once): at its natural end, or when the caller hangs up."""
        if self._published or not self.active:
            return
        self._published = True
        duration = round(time.monotonic() - self._listen_from, 1) if self._listen_from else 0.0
        log.info("call %s: voicemail of %.1fs: %r", self.bus.call_id, duration, self.text)
        await self._event(VOICEMAIL_MESSAGE, {"text": self.text, "duration_s": duration, "reason": self.reason})

    async def _event(self, name: str, data: dict[str, object]) -> None:
        await self.bus.publish(CallEvent(call_id=self.bus.call_id, name=name, data=data),
                               subjects.event(self.bus.call_id))
