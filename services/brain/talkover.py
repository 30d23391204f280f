"""The caller's voice while the agent has the turn, or is about to take it.

From voice activity events alone (the words come later, see `session`), one call's `TalkOver`
decides at once:
- speech that starts as an answer is about to play, or just began (`barge_in_collision_ms`),
  pauses it: the caller had not finished;
- `barge_in_min_ms` of voiced speech over the agent pauses it, `barge_in_confirm_ms` interrupts
  it (`overlap.BargeIn`); after the agent resumed over a backchannel, the same utterance must
  grow by `barge_in_min_ms` again before it pauses the agent again;
- speech before any of a reply went out holds the reply (`overlap.ReplyHold`);
- the end of the speech starts the clocks that let a held reply, or a paused agent, go on when
  no words come.
"""

from __future__ import annotations

from dataclasses import dataclass

from ringline.contracts.messages import SpeechEvent

from .overlap import BargeIn, ReplyHold
from .settings import BrainSettings
from .speaking import SpeakingTracker


@dataclass
class CallerSpeech:
    """The caller's current utterance, from voice activity events."""

    utterance_id: str = ""
    started_at: float = 0.0
    voiced_ms: float = 0.0
    active: bool = False
    resumed_ms: float = 0.0  # voiced when the agent last resumed over this utterance


class TalkOver:
    def __init__(self, settings: BrainSettings, speech: SpeakingTracker, barge_in: BargeIn,
                 hold: ReplyHold) -> None:
        self.settings = settings
        self.speech = speech
        self.barge_in = barge_in
        self.hold = hold
        self.caller = CallerSpeech()

    async def on_speech(self, event: SpeechEvent) -> None:
        caller = self.caller
        if event.kind != "stopped":
            self.barge_in.caller_started()  # more speech: whatever it is decides, not the clock
        if event.utterance_id != caller.utterance_id:
            caller.utterance_id, caller.voiced_ms, caller.resumed_ms = event.utterance_id, 0.0, 0.0
            caller.started_at = event.started_at or event.at
            self.hold.caller_started()
            if self.collision(caller.started_at):  # both started at once: the agent yields
                await self.barge_in.pause(caller.started_at, event.voiced_ms, event.utterance_id)
        caller.voiced_ms = max(caller.voiced_ms, event.voiced_ms)
        if event.kind == "stopped":
            caller.active = False
            self.hold.caller_stopped()
            self.barge_in.caller_stopped()
            return
        caller.active = True
        settings = self.settings
        if caller.voiced_ms >= max(settings.barge_in_confirm_ms, settings.barge_in_min_ms):
            await self.barge_in("voiced", caller.started_at, caller.voiced_ms, event.utterance_id)
        elif caller.voiced_ms - caller.resumed_ms >= settings.barge_in_min_ms:
            await self.barge_in.pause(caller.started_at, caller.voiced_ms, event.utterance_id)

    def collision(self, onset: float) -> bool:
        """The caller started talking as an answer was about to play (or had just begun)."""
        window = self.settings.barge_in_collision_ms / 1000
        return any(t.kind == "answer" and t.heard_seq < 0
                   and (not t.first_audio_at or onset - t.first_audio_at < window)
                   for t in self.speech.speaking_turns())

    async def resume(self, why: str) -> None:
        """The paused agent goes on: the caller only said "uh-huh" (or coughed)."""
        if await self.barge_in.resume(why):
            self.caller.resumed_ms = self.caller.voiced_ms
