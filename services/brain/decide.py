"""The brain's turn-taking decisions: `decide(state, event, rules, now) -> [actions]`, pure.

It reads the `TurnState` (never changes it: it works on a scratch copy, applying its own actions
as it goes so that later decisions see earlier ones) and returns what the session should do.

- The caller's voice activity (`SpeechEvent`) while the agent has the turn: speech that starts
  as an answer is about to play, or just began (`barge_in_collision_ms`), pauses it;
  `barge_in_min_ms` of voiced speech pauses it, `barge_in_confirm_ms` interrupts it; a short
  burst that goes quiet resumes it at once (`talkover`); after the agent resumed over a
  backchannel the same utterance must grow by `barge_in_min_ms` again before it pauses it
  again. Speech before any of a reply went out holds the reply. The end of the speech starts
  the clocks that let a held reply, or a paused agent, go on without words.
- The caller's words (`Words`): an interim with real words interrupts (and may start a
  preemptive guess); a backchannel or a noise resumes a paused agent. A final, end-of-turn
  transcript starts an agent turn unless it is only a backchannel said while (or just after)
  the agent talked, or a goodbye (the agent says goodbye and hangs up), or a request to be
  forgotten.
- Playback marks say what the caller heard; a turn whose final mark does not come back within
  the time its unheard text takes to say plus the slack is taken as finished.
- After the agent finished speaking, caller silence gets one re-prompt, then a goodbye. The
  last line is followed by the hang-up once it was heard (or could have been).
"""

from __future__ import annotations

import re
from typing import Any

from ringline.contracts.events import CALL_LIMIT, EDGE_TAKEOVER, STAGE_TAKEOVER, STT_EMPTY, TURN_FIRST_AUDIO
from ringline.contracts.messages import CallEvent, Control, Playback, SpeechEvent, Transcript

from . import actions as a
from .events import ChunkOut, GoodbyeSaid, Restored, TimerFired, TurnDone, Words
from .phrases import has_words, is_backchannel, is_caller_goodbye, is_forget_request
from .rules import Rules
from .state import SHORT_BURST, TurnState
from .talkover import TalkOver

END_ACTIONS = frozenset({"ended", "hangup"})
_DIGIT = re.compile(r"^[0-9*#A-Da-d]$")


def decide(state: TurnState, event: object, rules: Rules, now: float) -> list[object]:
    """What to do about `event`; `state` is left as it is."""
    decider = _Decider(state.copy(), rules, now)
    decider.on(event)
    return decider.actions


class _Decider(TalkOver):
    def on(self, event: object) -> None:
        match event:
            case SpeechEvent():
                self.speech(event)
            case Words():
                self.words(event)
            case Playback():
                self.playback(event)
            case Control():
                self.control(event)
            case CallEvent(name=name) if name == STT_EMPTY and self.s.agent_paused:
                self.resume("no words")  # a cough, a breath: nothing was said
            case CallEvent(name=name, turn_id=tid, timing=timing) if name == TURN_FIRST_AUDIO and tid and timing:
                self.do(a.FirstAudio(tid, timing.edge_sent_at or event.at))
            case ChunkOut():
                self.chunk(event)
            case TurnDone():
                self.turn_done(event)
            case GoodbyeSaid():
                self.begin_hangup(event.turn_id, event.text, event.reason, event.transfer_to)
            case TimerFired():
                self.timer(event.name)
            case Restored():
                self.restored()
            case CallEvent(name=name, data=data) if name == EDGE_TAKEOVER or (
                    name == STAGE_TAKEOVER and data.get("stage") == "tts"):
                self.audio_lost()

    # -- the caller's voice -------------------------------------------------------------------

    def speech(self, event: SpeechEvent) -> None:
        s, r, caller = self.s, self.r, self.s.caller
        if s.ended:
            return
        if s.voicemail:
            self.do(a.ToVoicemail(event))
            return
        if event.kind != "stopped":
            self.do(a.Disarm("resume-agent"))  # more speech: whatever it is decides, not the clock
        if event.utterance_id != caller.utterance_id:
            self.do(a.NewUtterance(event.utterance_id, event.started_at or event.at))
            self.hold_reply()
            if self.collision(caller.started_at):  # both started at once: the agent yields
                self.pause(caller.started_at, event.voiced_ms, event.utterance_id, "collision")
        self.do(a.CallerVoice(event.voiced_ms, event.kind != "stopped", event.at, self.voice_came_back(event)))
        if event.kind == "stopped":
            if s.agent.held_turn_id:  # no words soon: the held reply goes out
                self.do(a.Arm("resume-reply", r.hold_resume_s))
            if self.short_burst():  # it went quiet: a backchannel, until its words say otherwise
                self.resume(SHORT_BURST)
            elif s.agent_paused:  # no words soon: the paused agent goes on
                self.do(a.Arm("resume-agent", r.hold_resume_s))
            self.arm_silence()
            return
        if caller.voiced_ms >= max(r.barge_in_confirm_ms, r.barge_in_min_ms):
            self.barge_in("voiced", caller.started_at, caller.voiced_ms, event.utterance_id)
        elif self.pause_due():
            self.pause(caller.started_at, caller.voiced_ms, event.utterance_id)
        self.watch_burst()
        self.do(a.Disarm("silence"))

    # -- the caller's words -------------------------------------------------------------------

    def words(self, words: Words) -> None:
        s, transcript = self.s, words.transcript
        if s.ended:
            return
        if s.voicemail:
            self.do(a.ToVoicemail(transcript))
            return
        if transcript.is_final and transcript.end_of_turn:
            self.final(words)
            return
        if not has_words(transcript.text) or is_backchannel(transcript.text) or self.murmur(transcript):
            if s.agent_paused:
                self.resume("backchannel" if has_words(transcript.text) else "no words")
            return
        self.do(a.Disarm("silence"))
        started_at = transcript.speech_started_at or s.caller.started_at
        self.barge_in("interim", started_at, s.caller.voiced_ms, transcript.utterance_id)
        if self.r.preemptive and not transcript.is_final:
            self.do(a.Guess(words))

    def final(self, words: Words) -> None:
        s, r, transcript = self.s, self.r, words.transcript
        text, uid = transcript.text, transcript.utterance_id
        if s.agent.held_turn_id and (not has_words(text) or is_backchannel(text)):
            self.let_go()  # only a noise or an "um": the held reply goes out
            return
        self.do(a.DropHold())
        self.do(a.Disarm("resume-reply"))
        if not has_words(text) or s.ending:
            self.do(a.DiscardGuess())
            self.resume("no words")
            self.arm_silence()
            return
        if self.just_a_backchannel(transcript):
            self.do(a.DiscardGuess())
            self.resume("backchannel")
            self.arm_silence()
            return
        self.barge_in("final", transcript.speech_started_at or s.caller.started_at, s.caller.voiced_ms, uid)
        self.do(a.SetOwed(False))
        self.reset_silence()
        self.do(a.GreetNow())  # the caller is talking: greet (if not yet) without waiting
        if r.goodbye_phrases and is_caller_goodbye(text):
            self.do(a.DiscardGuess())
            self.do(a.CancelTurn())
            self.do(a.AddCaller(text, uid))
            self.do(a.SayGoodbye(r.goodbye_line, "the caller said goodbye", uid))
            return
        if is_forget_request(text):
            self.do(a.Forget(words))
            return
        self.do(a.CancelFolds())  # the caller's turn goes first on the model
        self.do(a.Answer(words, end_of_turn(transcript)))

    def just_a_backchannel(self, transcript: Transcript) -> bool:
        """Only "uh-huh"/"okay" said while (or just after) the agent talked: not a turn."""
        s = self.s
        if not s.owed and s.speaking and self.murmur(transcript):
            return True
        if s.owed or not is_backchannel(transcript.text):
            return False
        if s.speaking:
            return True
        if s.last_text.rstrip().endswith("?"):
            return False  # "yes" to the agent's question is an answer
        return s.spoke_since(transcript.speech_started_at or transcript.emitted_at, self.r.backchannel_grace_s)

    # -- controls -----------------------------------------------------------------------------

    def control(self, control: Control) -> None:
        s = self.s
        if control.action in END_ACTIONS:
            self.do(a.FinishVoicemail())
            self.do(a.Stop(control.action))
        elif control.action == "interrupt":
            for turn in s.speaking_turns():
                if control.turn_id in ("", turn.turn_id):
                    self.end(turn.turn_id, "interrupted")
            if control.turn_id in ("", s.agent.turn_id):
                self.do(a.CancelTurn())
        elif control.action == "dtmf":
            self.dtmf(control)

    def dtmf(self, control: Control) -> None:
        s, digit = self.s, control.digit.strip()
        if s.ended or s.ending or s.voicemail or not _DIGIT.match(digit):
            return
        self.reset_silence()
        self.barge_in("dtmf", control.at, 0.0, "")
        for action in (a.SetOwed(False), a.DropHold(), a.Disarm("resume-reply"), a.DiscardGuess(), a.CancelTurn(),
                       a.CancelFolds(), a.GreetNow(), a.AddCaller(f"pressed {digit}", event=True)):
            self.do(action)
        canned = self.r.dtmf_replies.get(digit)
        self.do(a.Say(canned, "answer") if canned else a.AnswerDigit(digit, control.at))

    # -- silence and the clocks ---------------------------------------------------------------

    def timer(self, name: str) -> None:
        s, r = self.s, self.r
        if name == "silence" and s.quiet():
            if s.silence_count == 0:
                self.do(a.Say(r.reprompt_line, "reprompt"))
            else:
                self.do(a.SayGoodbye(r.silence_goodbye_line, "the caller was silent"))
            self.do(a.SilenceCount(s.silence_count + 1))
        elif name == "resume-agent":
            self.resume("no words", note_voiced=False)
        elif name == "burst-over" and self.short_burst():
            self.resume(SHORT_BURST)
        elif name == "resume-reply" and s.agent.held_turn_id:
            self.let_go()
        elif name == "hangup":
            self.hang_up("timeout")
        elif name == "time-limit" and not (s.ended or s.ending):
            self.do(a.Report(CALL_LIMIT, "", {"max_call_s": r.max_call_s}))
            self.do(a.FinishVoicemail())
            self.do(a.SayGoodbye(r.time_limit_line, "the call reached its time limit"))
        elif name.startswith("playback:"):
            self.end(name.partition(":")[2], "timeout")  # its final mark did not come back in time

    # -- a takeover ---------------------------------------------------------------------------

    def restored(self) -> None:
        """Carry on a call taken over from a snapshot. Turns whose final chunk went out play on
        (their marks come back from the edge); a paused one waits for the caller's words as
        usual. A reply whose generation died with the old replica is cut at what the caller
        heard and made again from the history. A pending hang-up still happens."""
        s, agent = self.s, self.s.agent
        if s.ended:
            return
        in_flight = s.turns.get(agent.turn_id)
        lost = agent.generating and not s.ending and (in_flight is None or in_flight.final_seq is None)
        cut = [t for t in s.speaking_turns() if t.final_seq is None]
        if cut:
            self.do(a.Interrupt(tuple(t.turn_id for t in cut), "takeover"))
            for turn in cut:
                self.end(turn.turn_id, "interrupted")
        for turn in s.speaking_turns():
            if not turn.paused:
                self.arm_playback(turn)
        if s.agent_paused:
            self.do(a.Arm("resume-agent", 2 * self.r.hold_resume_s))
        self.do(a.SetOwed(False))
        self.do(a.DropHold())
        self.do(a.DiscardGuess())
        self.do(a.CancelTurn())
        hangup = s.hangup
        if hangup is not None and not hangup.done:
            ended = s.turns[hangup.turn_id].ended if hangup.turn_id in s.turns else "timeout"
            if ended is not None:
                self.hang_up(ended)
            else:
                self.do(a.Arm("hangup", self.r.playback_timeout(hangup.text) + 1.0))
        elif s.ending and hangup is None:  # its goodbye was about to be said: hang up now
            self.begin_hangup("", "", "the call was ending when it was taken over", "")
        elif lost:
            self.do(a.AnswerAgain())
        else:
            self.arm_silence()

    def audio_lost(self) -> None:
        """The stage that voices replies (TTS) or plays them (the edge) was replaced mid-call: what
        it had not played yet is gone. Each turn still speaking is cut at what the caller heard;
        a finished reply is said again from its first unheard chunk, one still being made is
        made again from the history (as after the brain's own takeover)."""
        s = self.s
        if s.ended:
            return
        speaking = [t for t in s.speaking_turns() if not t.paused]
        if not speaking:
            return
        self.do(a.Interrupt(tuple(t.turn_id for t in speaking), "takeover"))
        rest = []
        for turn in speaking:
            if turn.final_seq is not None:
                rest.append(turn.text_between(turn.heard_seq + 1, turn.final_seq))
            self.end(turn.turn_id, "interrupted")
        if s.agent.generating and s.agent.turn_id in {t.turn_id for t in speaking if t.final_seq is None}:
            self.do(a.CancelTurn())
            self.do(a.AnswerAgain())
        elif " ".join(rest).strip():
            self.do(a.Say(" ".join(rest).strip(), "answer"))


def end_of_turn(transcript: Transcript) -> dict[str, Any]:
    """How long the caller waited for the end of their turn to be detected, and why it ended."""
    data: dict[str, Any] = {}
    if transcript.speech_ended_at and transcript.emitted_at:
        data["end_of_turn_ms"] = round((transcript.emitted_at - transcript.speech_ended_at) * 1000, 1)
    if transcript.end_reason:
        data["end_of_turn_reason"] = transcript.end_reason
    return data
