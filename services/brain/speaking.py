"""Is the agent speaking, and what has the caller heard? Decisions on reply chunks going out,
playback marks coming back, turns ending and the hang-up after the last line (pure: they add
actions to a scratch `TurnState`, see `decide`).

A turn is speaking from its first chunk until the mark of its final chunk comes back from the
phone side (the caller heard it all), or it is interrupted. TTS puts one mark per chunk
(`make_mark(turn_id, seq)`); the edge echoes it when the audio up to it has played, or with
`cleared=True` when a barge-in cleared the audio before it played. Audio plays in order, so a
heard mark means every chunk up to it was heard. A paused turn (the caller talked over it; the
edge stopped its audio and keeps it) still counts as speaking, the echoes of the marks the pause
cleared are ignored, and no timeout runs until it is resumed or interrupted.

Marks can go missing (a TTS failure, a lost message): a turn whose final mark does not come
back within the time its unheard text takes to say (`chars_per_s`) plus `slack_s`, counted again
from each mark heard, is taken as finished ("timeout"). A finished turn starts the silence clock:
caller silence gets one re-prompt, then a goodbye. The last line is followed by the hang-up (or
the transfer) once it was heard, or could have been.
"""

from __future__ import annotations

from ringline.contracts.messages import Playback, parse_mark

from . import actions as a
from .events import ChunkOut, TurnDone
from .rules import Rules
from .state import Ending, SpokenTurn, TurnState
from .transition import apply


class Scratch:
    """A scratch copy of the state and the actions decided on it so far."""

    def __init__(self, state: TurnState, rules: Rules, now: float) -> None:
        self.s, self.r, self.now = state, rules, now
        self.actions: list[object] = []

    def do(self, action: object) -> None:
        apply(self.s, action)
        self.actions.append(action)


class Speaking(Scratch):
    """Decisions on what the agent says: chunks out, marks back, turns ending, the hang-up."""

    def chunk(self, chunk: ChunkOut) -> None:
        self.do(a.Sent(chunk.turn_id, chunk.seq, chunk.text, chunk.final, chunk.kind, self.now))
        turn = self.s.turns[chunk.turn_id]
        if chunk.final and turn.ended is None and not turn.paused:
            self.arm_playback(turn)

    def playback(self, playback: Playback) -> None:
        turn_id, seq = parse_mark(playback.mark)
        turn = self.s.turns.get(turn_id)
        if turn is None or turn.ended is not None or seq < 0:
            return
        if playback.cleared:
            if not turn.paused and turn.final_seq is not None and seq >= turn.final_seq:
                self.end(turn_id, "cleared")
            return  # a pause cleared it: it plays again on resume
        self.do(a.Heard(turn_id, seq))
        if turn.final_seq is not None and turn.heard_seq >= turn.final_seq:
            self.end(turn_id, "heard")
        elif turn.final_seq is not None and not turn.paused:
            self.arm_playback(turn)

    def arm_playback(self, turn: SpokenTurn) -> None:
        """(Re)start the wait for the final mark: the unheard text's length plus the slack."""
        unheard = turn.text_between(turn.heard_seq + 1, turn.final_seq or 0)
        self.do(a.Arm(f"playback:{turn.turn_id}", self.r.playback_timeout(unheard)))

    def end(self, turn_id: str, how: Ending) -> None:
        s = self.s
        turn = s.turns.get(turn_id)
        if turn is None or turn.ended is not None:
            return
        self.do(a.End(turn_id, how, self.now))
        self.do(a.Disarm(f"playback:{turn_id}"))
        if how == "cleared" and turn_id == s.agent.turn_id:
            self.do(a.CancelTurn())
        if how not in ("interrupted", "cleared"):
            self.arm_silence()
        if s.hangup is not None and s.hangup.turn_id == turn_id:
            self.hang_up(how)

    def turn_done(self, done: TurnDone) -> None:
        if not done.failed and done.final_kind == "goodbye" and not self.s.ended:
            self.begin_hangup(done.turn_id, done.text, done.end_reason or "the agent said goodbye", done.transfer_to)
        elif not done.failed:  # fold a long call's history now, while the reply plays
            self.do(a.FoldAfterTurn(self.s.agent.turn_id))
            self.arm_silence()  # (the turn counts as generating until it finished)
        self.do(a.TurnFinished(done.turn_id))

    # -- ending -------------------------------------------------------------------------------

    def begin_hangup(self, turn_id: str, text: str, reason: str, transfer_to: str) -> None:
        s = self.s
        if s.hangup is not None or s.ended:
            return
        self.do(a.BeginHangup(turn_id, text, reason, transfer_to, self.now))
        turn = s.turns.get(turn_id)
        if turn is None or turn.ended is not None:
            self.hang_up(turn.ended if turn is not None and turn.ended else "timeout")
        else:
            self.do(a.Arm("hangup", self.r.playback_timeout(text) + 1.0))

    def hang_up(self, how: str) -> None:
        hangup = self.s.hangup
        if hangup is None or hangup.done or self.s.ended:
            return
        waited_ms = round((self.now - hangup.started_at) * 1000, 1)
        self.do(a.HangUp(hangup.reason, hangup.turn_id, hangup.transfer_to, how, waited_ms))
        self.do(a.Disarm("hangup"))

    def arm_silence(self) -> None:
        if self.r.silence_first_s > 0 and self.s.quiet():
            delay = self.r.silence_first_s if self.s.silence_count == 0 else self.r.silence_again_s
            self.do(a.Arm("silence", delay))

    def reset_silence(self) -> None:
        self.do(a.SilenceCount(0))
        self.do(a.Disarm("silence"))

