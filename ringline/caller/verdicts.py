"""After the call: what each step means for the caller, from the line's timeline. Pure.

- interrupt: barge-in reaction = the interrupting speech's onset (first voiced frame sent) ->
  the `clear` that stopped the agent (the first one its turn did not come back after: a pause it
  went on from, then an interrupt on the words, counts from the interrupt); audio after the
  clear = frames of the interrupted turn that still arrived (frames are attributed to the turn
  of the next mark; frames with no mark after them count when they came while the caller was
  still speaking, since no answer can come then);
- backchannel: whether a `clear` came from its onset until shortly after its speech (or the
  reply) ended, and if so whether the agent's turn came back after it (it paused, then went on:
  for how long the caller heard nothing, and how much of what it had heard it heard again) or
  not (the backchannel stopped it);
- say with inner pauses: false cut-off = agent audio arriving from the first pause until the
  utterance's speech ended;
- an agent hang-up: whether all its audio had played and every mark had been echoed (not
  flushed by a `clear`) when the stream closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ringline.contracts.messages import parse_mark

from .results import CallResult, StepResult
from .timeline import Timeline

CLEAR_WAIT_S = 3.0  # a `clear` this long after the interruption ended still counts as the reaction
BACKCHANNEL_GRACE_S = 1.5  # a `clear` this long after the reply around a backchannel ended still counts
PLAYED_TOLERANCE_S = 0.04  # the line echoes marks on a 20 ms tick
RATE = 8000  # mu-law bytes a second
PROBE = 480  # bytes of audio (60 ms) looked for to find where a replay picks up
REPLAY_SEARCH_S = 5.0


class Played(Protocol):
    """A stretch of agent audio as the caller's phone played it (`PlaybackEmulator.pieces`)."""

    start: float
    audio: bytearray


def judge(result: CallResult, timeline: Timeline, playback_end: float, played: Sequence[Played] = ()) -> None:
    """Fill in the verdicts of `result.steps` and the call's hang-up verdict, in place."""
    for step in result.steps:
        if step.kind == "interrupt":
            _interrupt(step, timeline)
        elif step.kind == "backchannel":
            _backchannel(step, timeline, played)
        elif step.kind == "say" and step.pauses:
            _pauses(step, timeline)
        elif step.kind == "expect_hangup" and step.agent_hung_up:
            step.note = step.note or _hangup_note(timeline, playback_end)
    if timeline.closed_by == "agent" and timeline.closed_at is not None:
        _agent_hangup(result, timeline, playback_end)


def _interrupt(step: StepResult, timeline: Timeline) -> None:
    onset, end = step.speech_onset_at, step.speech_end_at
    if onset is None:
        return
    clears = timeline.clears_between(onset, (end or onset) + CLEAR_WAIT_S)
    step.clear_received = bool(clears)
    step.clears = len(clears)
    if not clears:
        step.note = step.note or "the agent kept talking: no clear came"
        return
    start = step.reply_started_at or onset
    stopped = [at for i, at in enumerate(clears)
               if not _came_back(timeline, start, at, clears[i + 1] if i + 1 < len(clears) else None)]
    step.agent_stopped = bool(stopped)
    clear_at = stopped[0] if stopped else clears[-1]
    step.barge_in_ms = round((clear_at - onset) * 1000, 1)
    interrupted = _turns_playing(timeline, step.reply_started_at or onset, clear_at)
    leaked = [at for at, turn in timeline.media_turns_after(clear_at + 1e-6)
              if (turn and turn in interrupted) or (not turn and end is not None and at < end)]
    step.audio_after_clear_ms = float(len(leaked) * 20)


def _came_back(timeline: Timeline, start: float, clear_at: float, before: float | None) -> bool:
    """Did the turn playing at `clear_at` play again after it (before the next clear)?"""
    playing = _turns_playing(timeline, start, clear_at)
    return any(turn in playing and (before is None or at < before)
               for at, turn in timeline.media_turns_after(clear_at + 1e-6))


def _backchannel(step: StepResult, timeline: Timeline, played: Sequence[Played] = ()) -> None:
    onset = step.speech_onset_at
    if onset is None:
        return
    until = max(step.ended_at, step.speech_end_at or onset) + BACKCHANNEL_GRACE_S
    clears = timeline.clears_between(onset, until)
    step.clear_received = bool(clears)
    step.clears = len(clears)
    step.agent_stopped = False
    step.replayed_ms = 0.0
    if not clears:
        return
    clear_at = clears[0]
    playing = _turns_playing(timeline, step.reply_started_at or onset, clear_at)
    back = [at for at, turn in timeline.media_turns_after(clear_at + 1e-6) if turn in playing]
    if back:
        step.paused_ms = round((back[0] - clear_at) * 1000, 1)
        step.replayed_ms = replayed_ms(played, clear_at, back[0])
    else:
        step.agent_stopped = True
        step.note = step.note or "the backchannel stopped the agent"


def replayed_ms(played: Sequence[Played], clear_at: float, back_at: float) -> float:
    """How much of the audio the caller heard up to a `clear` they heard again when the agent went
    on at `back_at`: where the first non-silent stretch after it is found in what played before
    it (the edge replays the very same frames). 0 when it went on where it stopped."""
    # Audio that comes just in time plays as many short stretches: join them on each side.
    tail = b"".join(bytes(p.audio) for p in played if clear_at - REPLAY_SEARCH_S <= p.start < clear_at - 1e-6)
    resumed = b"".join(bytes(p.audio) for p in played if back_at - 0.002 <= p.start < back_at + 2.0)
    if not tail or not resumed:
        return 0.0
    for offset in range(0, max(0, len(resumed) - PROBE), 160):
        probe = resumed[offset:offset + PROBE]
        if len(set(probe)) > 8:  # not silence: a stretch of speech that identifies a place
            found = tail.rfind(probe)
            return round(max(0, len(tail) - found + offset) * 1000 / RATE, 1) if found >= 0 else 0.0
    return 0.0


def _turns_playing(timeline: Timeline, start: float, clear_at: float) -> set[str]:
    """Turns whose audio was on its way to the caller when the `clear` came."""
    names = [*timeline.marks_between(start - 0.001, clear_at + 0.001),
             *timeline.echoed_via_clear(clear_at, clear_at + 1.0)]
    return {parse_mark(n)[0] or n for n in names}


def _pauses(step: StepResult, timeline: Timeline) -> None:
    first_pause = step.pauses[0][0]
    end = step.speech_end_at or step.pauses[-1][1]
    frames = timeline.media_between(first_pause, end)
    step.false_cutoff = bool(frames)
    if frames:
        step.note = (f"the agent started talking {(frames[0] - first_pause) * 1000:.0f} ms into the pause, "
                     f"before the caller finished")


def _hangup_note(timeline: Timeline, playback_end: float) -> str:
    closed = timeline.closed_at or 0.0
    gap_ms = (closed - playback_end) * 1000
    if gap_ms >= 0:
        return f"hung up {gap_ms:.0f} ms after its audio finished playing"
    return f"hung up with {-gap_ms:.0f} ms of its audio still to play"


def _agent_hangup(result: CallResult, timeline: Timeline, playback_end: float) -> None:
    closed = timeline.closed_at or 0.0
    result.unplayed_at_hangup_ms = round(max(0.0, playback_end - closed) * 1000, 1)
    spoke_after_caller = True
    last_caller = max((t.ended_at for t in result.turns if t.speaker == "caller"), default=0.0)
    if last_caller:
        spoke_after_caller = bool(timeline.media_between(last_caller, closed + 1e-6))
    unechoed = timeline.unechoed_at(closed)
    marks = timeline.marks_between(0.0, closed + 1e-6)
    last_turn = parse_mark(marks[-1])[0] if marks else ""
    flushed = [n for n in timeline.echoed_via_clear(0.0, closed + 1e-6) if parse_mark(n)[0] == last_turn]
    result.hung_up_after_goodbye = (spoke_after_caller and not unechoed and not flushed
                                    and playback_end <= closed + PLAYED_TOLERANCE_S)
