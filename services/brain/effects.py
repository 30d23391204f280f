"""The session applying actions: each first changes the `TurnState` (`actions.apply`), then
goes out on the bus, to the agent's voice, the history and the session's clocks.

A few outcomes only the voice knows come back into the state here: whether a reply could still
be held (nothing of it went out yet), whether a preemptive guess runs, and the id of the turn
just started.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Literal

from ringline.contracts import subjects
from ringline.contracts.events import CALL_HANGUP
from ringline.contracts.messages import CallEvent, Control, TurnTiming

from . import actions as a
from .events import GoodbyeSaid, Words
from .transition import apply

if TYPE_CHECKING:
    from .session import BrainSession

log = logging.getLogger("ringline.brain.effects")

ControlAction = Literal["pause", "resume", "interrupt", "hangup", "transfer"]


class CallEffects:
    def __init__(self, session: BrainSession) -> None:
        self.session = session
        self.call_id = session.call_id
        self.bus = session.bus

    async def run(self, actions: list[object]) -> None:
        for action in actions:
            apply(self.session.state, action)
            await self._do(action)

    async def _control(self, action: ControlAction, turn_id: str = "", reason: str = "", target: str = "") -> None:
        control = Control(call_id=self.call_id, action=action, turn_id=turn_id, reason=reason, target=target)
        await self.bus.publish(control, subjects.control(self.call_id))

    async def _do(self, action: object) -> None:
        session = self.session
        state, voice, timers = session.state, session.voice, session.timers
        match action:
            case a.Arm(timer=name, delay=delay):
                timers.arm(name, delay)
            case a.Disarm(timer=name):
                timers.disarm(name)
            case a.Pause(turn_ids=ids):
                for turn_id in ids:
                    await self._control("pause", turn_id, "caller speech")
            case a.Resume(turn_ids=ids, why=why):
                for turn_id in ids:
                    await self._control("resume", turn_id, why)
            case a.Interrupt(turn_ids=ids, trigger=trigger):
                for turn_id in ids:
                    await self._control("interrupt", turn_id, f"barge-in ({trigger})")
            case a.Report(name=name, turn_id=turn_id, data=data):
                log.info("call %s: %s %s %s", self.call_id, name, turn_id,
                         {k: v for k, v in data.items() if k != "heard_text"})  # no words in the log
                event = CallEvent(call_id=self.call_id, name=name, turn_id=turn_id, data=dict(data))
                await self.bus.publish(event, subjects.event(self.call_id))
            case a.End(turn_id=turn_id, how=how):
                voice.remember(turn_id, how)  # the history gets the turn as the caller heard it
                session.turn_ended(turn_id)
            case a.HoldReply(turn_id=turn_id):
                turn = voice.turn
                if turn is not None and turn.turn_id == turn_id and turn.hold():
                    state.agent.held_turn_id = turn_id
                    log.info("call %s: the caller goes on talking; reply %s held", self.call_id, turn_id)
                elif state.agent.held_turn_id == turn_id:
                    state.agent.held_turn_id = ""  # something of it already went out
            case a.LetGo(turn_id=turn_id):
                turn = voice.turn
                if turn_id and turn is not None and turn.turn_id == turn_id and voice.running:
                    await turn.resume()
            case a.CancelTurn():
                voice.cancel()
            case a.Guess(words=words):
                voice.guess(words.transcript, words.parent)
                state.agent.guessing = voice.guessing
            case a.DiscardGuess():
                voice.discard_guess()
            case a.Answer(words=words, extra=extra):
                await self._answer(words, extra)
            case a.AnswerDigit(digit=digit, at=at):
                voice.start_turn(in_reply_to="", timing=TurnTiming(transcript_at=at), extra={"dtmf": digit})
                state.agent.turn_id = voice.turn_id
            case a.AnswerAgain():
                voice.start_turn(in_reply_to="", timing=TurnTiming(), extra={"takeover": True})
                state.agent.turn_id = voice.turn_id
            case a.AddCaller(text=text, utterance_id=uid, event=True):
                log.info("call %s: caller %s", self.call_id, text)
                session.history.add_caller_event(text, uid)
            case a.AddCaller(text=text, utterance_id=uid):
                session.history.add_caller(text, uid)
            case a.Say(text=text, kind=kind, in_reply_to=uid):
                await voice.say_line(text, kind, uid)
            case a.SayGoodbye(text=text, reason=reason, in_reply_to=uid, transfer_to=to):
                voice.discard_guess()
                voice.cancel()
                turn_id = await voice.say_line(text, "goodbye", uid)
                await session.dispatch(GoodbyeSaid(turn_id, text, reason, to))
            case a.HangUp():
                await self._hang_up(action)
            case a.Forget(words=words):
                await session.forget_on_request(words.transcript)
            case a.CancelFolds():
                session.folds.cancel()
            case a.FoldAfterTurn(turn_id=turn_id):
                session.folds.after_turn(turn_id)
            case a.GreetNow():
                session.tts_ready.set()
            case a.ToVoicemail(message=message):
                session.voicemail.take(message)
            case a.FinishVoicemail():
                await session.voicemail.finish()
            case a.Stop(action=why):
                if not timers.closed:
                    log.info("call %s %s: brain stops", self.call_id, why)
                timers.close()
                voice.stop()

    async def _answer(self, words: Words, extra: dict[str, object]) -> None:
        session, voice, transcript = self.session, self.session.voice, words.transcript
        guess = voice.take_guess(transcript)
        voice.cancel()  # a turn still thinking about the caller's previous words
        session.history.add_caller(transcript.text, transcript.utterance_id)
        if guess is not None:
            session.state.agent.turn_id = guess.turn.turn_id
            guess.turn.extra.update(extra)
            await voice.keep_guess(guess, transcript)
            return
        timing = TurnTiming(speech_ended_at=transcript.speech_ended_at, transcript_at=transcript.emitted_at,
                            stt_provider=transcript.provider)
        voice.start_turn(in_reply_to=transcript.utterance_id, timing=timing, parent=words.parent, extra=extra)
        session.state.agent.turn_id = voice.turn_id

    async def _hang_up(self, action: a.HangUp) -> None:
        """Hang up (or transfer) now that the last line has been heard (or could have been: a
        timeout from its length). The edge moves a transferred call and records the outcome."""
        if action.transfer_to:
            log.info("call %s: agent transfers the call to %s (%s)", self.call_id, action.transfer_to, action.reason)
            await self._control("transfer", reason=action.reason, target=action.transfer_to)
            return
        data = {"reason": action.reason, "goodbye": action.goodbye, "waited_ms": action.waited_ms}
        log.info("call %s: agent hangs up (%s)", self.call_id, action.reason)
        await self.bus.publish(CallEvent(call_id=self.call_id, name=CALL_HANGUP, turn_id=action.turn_id, data=data),
                               subjects.event(self.call_id))
        await self._control("hangup", reason=action.reason)
