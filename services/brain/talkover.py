"""The caller's voice while the agent has the turn, or is about to take it (pure decisions).

From voice activity events alone (the words come later): speech that starts as an answer is
about to play, or just began (`barge_in_collision_ms`), pauses it: the caller had not finished;
`barge_in_min_ms` of voiced speech over the agent pauses it, `barge_in_confirm_ms` interrupts
it; after the agent resumed over a backchannel, the same utterance must grow by
`barge_in_min_ms` again before it pauses the agent again.

The shape of the speech tells a backchannel early: a short burst ("uh-huh", "okay", a cough)
that goes quiet (no more voiced audio for `backchannel_quiet_ms`) with at most
`backchannel_max_ms` of voiced speech. A burst under `barge_in_min_ms` never pauses the agent;
a longer one that paused it over its turn resumes it the moment it goes quiet, without waiting
for the words ("short burst"), and the words, when they come, can still make it an interruption
("stop", "no, wait"). If the same utterance speaks again ("Sorry, [gap] wait, stop"), that was
no murmur: `AGAIN_MS` of it pauses the agent again, and this time the words decide. A pause
from a collision waits for the words: that caller was mid-sentence.

- Pause: the edge clears the phone's buffer and keeps the audio, so the caller stops hearing the
  agent at once without anything being lost (`turn.paused`). A short burst, a backchannel or a
  noise resumes it (`turn.resumed`): the edge plays on from where it stopped. Real words (or long
  speech) make it an interruption: the interrupt control goes out (the edge drops the audio, TTS
  stops), the LLM turn is cancelled and the agent's turn is cut to what the caller heard
  (`turn.barge_in`).
- Hold: the caller starts talking again before any of a reply went out. Their words usually
  continue a turn the STT ended too early ("I'd like to book a table ... for Tuesday"): the reply
  is held, and the final transcript replaces it. A cough or an "um" (no words, or no transcript
  within `hold_resume_s` of the speech ending) lets it go out after all.
"""

from __future__ import annotations

from typing import Any

from ringline.contracts.events import TURN_BARGE_IN, TURN_PAUSED, TURN_RESUMED
from ringline.contracts.messages import SpeechEvent, Transcript

from . import actions as a
from .phrases import too_many_words
from .speaking import Speaking

AGAIN_MS = 100.0  # voice after a short burst that pauses the agent again (two of the STT's 50 ms ticks)
GAP_MS = 200.0  # a silence inside an utterance that makes what follows a second burst
GAPPY_MIN_MS = 250.0  # voice an utterance with a gap needs before it pauses the agent
WORD_MS = 250.0  # voiced audio a spoken word takes, at the least, in a burst over the agent


class TalkOver(Speaking):
    """Decisions on the caller talking over the agent: hold, pause, resume, interrupt."""

    def collision(self, onset: float) -> bool:
        """The caller started talking as an answer was about to play (or had just begun)."""
        window = self.r.barge_in_collision_ms / 1000
        return any(t.kind == "answer" and t.heard_seq < 0
                   and (not t.first_audio_at or onset - t.first_audio_at < window)
                   for t in self.s.speaking_turns())

    def hold_reply(self) -> None:
        """Hold the reply being prepared, if none of it went out yet."""
        agent = self.s.agent
        if agent.turn_id and agent.generating and not self.s.ending and agent.held_turn_id != agent.turn_id:
            self.do(a.HoldReply(agent.turn_id))

    def pause(self, onset: float, voiced_ms: float, utterance_id: str, why: str = "talk-over") -> bool:
        """Stop the caller hearing the agent now; False when it was not speaking (or says goodbye)."""
        s = self.s
        turns = [t for t in s.speaking_turns() if not t.paused]
        if s.ended or s.ending or not turns:
            return False
        ids = tuple(t.turn_id for t in turns)
        self.do(a.Pause(ids, onset, self.now, why))
        for tid in ids:
            self.do(a.Disarm(f"playback:{tid}"))
        # A backstop for a pause nothing decides (a noise the STT reports no end of): more speech
        # disarms it, the end of the speech starts the usual, shorter wait.
        self.do(a.Arm("resume-agent", 2 * self.r.hold_resume_s))
        reaction_ms = round((self.now - onset) * 1000, 1) if onset else None
        for turn in turns:
            self.do(a.Report(TURN_PAUSED, turn.turn_id, {"reaction_ms": reaction_ms, "voiced_ms": voiced_ms,
                                                          "utterance_id": utterance_id,
                                                          "heard_seq": turn.heard_seq}))
        return True

    def short_burst(self) -> bool:
        """The speech that paused the agent over its turn is, so far, short enough for a
        backchannel ("uh-huh", a cough): once it goes quiet the agent goes on, its words decide later."""
        s, limit = self.s, self.r.backchannel_max_ms
        return (s.agent_paused and s.pause_why == "talk-over" and not s.caller.gaps
                and 0 < s.caller.voiced_ms <= limit)

    def pause_due(self) -> bool:
        """Enough new voice over the agent to pause it: `barge_in_min_ms` more than when it last
        went on over this utterance; or, once the voice came back after a silence (a second
        burst: talk, not a murmur), `AGAIN_MS` more, with `GAPPY_MIN_MS` of it in all."""
        caller, r = self.s.caller, self.r
        if caller.gaps and r.backchannel_max_ms and caller.voiced_ms >= min(GAPPY_MIN_MS, r.barge_in_min_ms):
            return caller.voiced_ms - caller.resumed_ms >= AGAIN_MS
        return caller.voiced_ms - caller.resumed_ms >= r.barge_in_min_ms

    def voice_came_back(self, event: SpeechEvent) -> bool:
        """More voice after `GAP_MS` or more without any, inside the utterance (the STT's clock:
        the time between two voice events less the voiced audio they added)."""
        caller = self.s.caller
        if event.kind != "continuing" or not caller.voice_at or event.utterance_id != caller.utterance_id:
            return False
        unvoiced_ms = (event.at - caller.voice_at) * 1000 - max(0.0, event.voiced_ms - caller.voiced_ms)
        return unvoiced_ms >= GAP_MS

    def murmur(self, transcript: Transcript) -> bool:
        """Words the caller's burst over the agent could not have held: more than one a
        `WORD_MS` of its voice, and none that asks the agent to stop or answer ("stop", "wait",
        "no", "what"...). Whisper writes a quick "uh-huh" as "And then." or "In a month.": a
        murmur, not a request. Only for a short burst over the agent (not a collision)."""
        s, r = self.s, self.r
        if not r.backchannel_max_ms or not s.speaking or s.pause_why == "collision":
            return False
        voiced = s.caller.voiced_ms
        if transcript.utterance_id != s.caller.utterance_id:  # the caller spoke again since: its span
            voiced = (transcript.speech_ended_at - transcript.speech_started_at) * 1000
        return 0 < voiced <= r.backchannel_max_ms and too_many_words(transcript.text, voiced, WORD_MS)

    def watch_burst(self) -> None:
        """More voice from the caller: (re)start the wait for its end, while it may be a backchannel."""
        if self.short_burst():
            self.do(a.Arm("burst-over", self.r.backchannel_quiet_ms / 1000))
        else:
            self.do(a.Disarm("burst-over"))

    def resume(self, why: str, note_voiced: bool = True) -> bool:
        """It was only a backchannel or a noise: the agent goes on. False when nothing was paused."""
        s = self.s
        self.do(a.Disarm("resume-agent"))
        self.do(a.Disarm("burst-over"))
        paused_at = s.paused_at
        turns = [t for t in s.speaking_turns() if t.paused]
        if not turns:
            self.do(a.ClearPause())
            return False
        self.do(a.Resume(tuple(t.turn_id for t in turns), why, note_voiced))
        paused_ms = round((self.now - paused_at) * 1000, 1) if paused_at else None
        for turn in turns:
            if turn.final_seq is not None:
                self.arm_playback(turn)
            self.do(a.Report(TURN_RESUMED, turn.turn_id, {"paused_ms": paused_ms, "why": why,
                                                           "heard_seq": turn.heard_seq}))
        return True

    def barge_in(self, trigger: str, onset: float, voiced_ms: float, utterance_id: str) -> bool:
        """Stop every turn the agent is speaking; False when it was not speaking (or says goodbye)."""
        s = self.s
        self.do(a.Disarm("resume-agent"))
        self.do(a.Disarm("burst-over"))
        paused_at, pause_onset = s.paused_at, s.pause_onset
        self.do(a.ClearPause())
        speaking = s.speaking_turns()
        if s.ended or s.ending or not speaking:
            return False
        self.do(a.Interrupt(tuple(t.turn_id for t in speaking), trigger))
        self.do(a.CancelTurn())
        interrupted_at = self.now
        if paused_at:  # the caller stopped hearing the agent when it paused
            interrupted_at, onset = paused_at, pause_onset or onset
        for turn in speaking:
            self.end(turn.turn_id, "interrupted")  # the history gets only the part heard
            data: dict[str, Any] = {
                "heard_text": s.heard_text(turn.turn_id),
                "reaction_ms": round((interrupted_at - onset) * 1000, 1) if onset else None,
                "voiced_ms": voiced_ms, "trigger": trigger, "paused": bool(paused_at),
                "utterance_id": utterance_id, "chunks_sent": len(turn.chunks), "chunks_heard": turn.heard_seq + 1,
            }
            if paused_at:
                data["decided_ms"] = round((self.now - paused_at) * 1000, 1)
            self.do(a.Report(TURN_BARGE_IN, turn.turn_id, data))
        return True

    # -- the caller's words -------------------------------------------------------------------

    def let_go(self) -> None:
        held = self.s.agent.held_turn_id
        self.do(a.LetGo(held))
        self.do(a.Disarm("resume-reply"))

    # -- what the agent said ------------------------------------------------------------------
