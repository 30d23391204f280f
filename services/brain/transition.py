"""What each action changes in a call's `TurnState` (no I/O).

`decide` applies its actions to a scratch copy as it goes, the session to the real state before
it carries each out; outcomes only the voice knows come back separately (`effects`).
"""

from __future__ import annotations

from .actions import (
    Answer,
    AnswerAgain,
    AnswerDigit,
    BeginHangup,
    CallerVoice,
    CancelTurn,
    ClearPause,
    DiscardGuess,
    DropHold,
    End,
    FirstAudio,
    Forget,
    Greeted,
    Guess,
    HangUp,
    Heard,
    HoldReply,
    Interrupt,
    LetGo,
    NewUtterance,
    Pause,
    Resume,
    SayGoodbye,
    Sent,
    SetOwed,
    SilenceCount,
    Stop,
    TurnFinished,
    VoicemailStarted,
)
from .state import SHORT_BURST, Hangup, TurnState


def apply(state: TurnState, action: object) -> None:
    """What an action changes in the state (no I/O; outcomes the voice reports come separately)."""
    caller, agent = state.caller, state.agent
    match action:
        case NewUtterance(utterance_id=uid, started_at=at):
            caller.utterance_id, caller.started_at, caller.voiced_ms, caller.resumed_ms = uid, at, 0.0, 0.0
            caller.voice_at, caller.gaps = 0.0, 0
        case CallerVoice(voiced_ms=ms, active=active, at=at, gap=gap):
            if active and at and ms > caller.voiced_ms:
                caller.voice_at = at
            caller.voiced_ms, caller.active = max(caller.voiced_ms, ms), active
            caller.gaps += gap
        case Sent():
            state.record_chunk(action.turn_id, action.seq, action.text, action.final, action.kind, action.at)
        case Heard(turn_id=tid, seq=seq) if tid in state.turns:
            state.turns[tid].heard_seq = max(state.turns[tid].heard_seq, seq)
        case FirstAudio(turn_id=tid, at=at) if tid in state.turns and not state.turns[tid].first_audio_at:
            state.turns[tid].first_audio_at = at
        case Pause(turn_ids=ids, onset=onset, at=at, why=why):
            for tid in ids:
                state.turns[tid].paused = True
            if not state.paused_at:
                state.paused_at, state.pause_onset, state.pause_why = at, onset, why
        case Resume(turn_ids=ids, why=why, note_voiced=note):
            state.paused_at, state.pause_why = 0.0, ""
            for tid in ids:
                state.turns[tid].paused = False
            if ids and note:
                caller.resumed_ms = caller.voiced_ms
            if ids and why == SHORT_BURST:
                caller.gaps += 1  # it went quiet: more voice of it is a second burst
        case ClearPause():
            state.paused_at, state.pause_why = 0.0, ""
        case Interrupt():
            state.owed = True
        case End(turn_id=tid, how=how, at=at):
            state.end_turn(tid, how, at)
        case HoldReply(turn_id=tid) if not state.sent_chunks(tid):
            agent.held_turn_id = tid  # as the voice's gate will: only while nothing went out
        case LetGo() | DropHold():
            agent.held_turn_id = ""
        case CancelTurn():
            agent.generating = False
        case DiscardGuess():
            agent.guessing = False
        case Guess():
            agent.guessing = not (state.ended or state.ending or agent.generating)
        case Answer() | AnswerDigit() | AnswerAgain():
            agent.generating, agent.finished, agent.guessing = True, False, False
        case SayGoodbye():
            state.stage = "ending"
            agent.generating = agent.guessing = False
        case BeginHangup(turn_id=tid, text=text, reason=reason, transfer_to=to, at=at):
            state.stage = "ending"
            state.hangup = Hangup(tid, text, reason, to, at)
        case HangUp() if state.hangup is not None:
            state.hangup.done = True
        case Forget():
            agent.generating = agent.guessing = False
        case SetOwed(owed=owed):
            state.owed = owed
        case SilenceCount(count=count):
            state.silence_count = count
        case TurnFinished(turn_id=tid) if tid == agent.turn_id:
            agent.generating, agent.finished = False, True
        case Greeted(turn_id=tid):
            state.greeted, state.greeting_turn_id = True, tid
            if state.stage == "opening":
                state.stage = "talking"
        case VoicemailStarted(reason=reason):
            state.voicemail = reason
        case Stop():
            state.stage = "ended"
            agent.generating = agent.guessing = False
