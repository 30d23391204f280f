"""The brain's per-call session: the turn-taking decisions of one call.

Subscriptions (all on the call's own subjects):
- `event`: the TTS stage saying it is ready, so the greeting is not spoken into the void;
- `speech`: the caller's voice activity, which pauses, interrupts or holds what the agent says
  (`talkover`, `overlap`);
- `transcript`: an interim with real words also interrupts (and may start a preemptive turn),
  a backchannel or a noise resumes a paused agent; a final, end-of-turn transcript starts an
  agent turn unless it is only a backchannel said while (or just after) the agent talked, or a
  goodbye (the agent says goodbye and hangs up);
- `playback`: marks the caller heard, so the brain knows when the agent stops speaking and
  what of an interrupted turn was heard;
- `control`: hang-up / call ended stop everything; an interrupt cancels the turn it names; a
  key press (dtmf) is a caller turn of its own.
After the agent finished speaking, caller silence gets one re-prompt, then a goodbye.
At call start (`opening`): a call the agent cannot take (allow-list, business hours, busy, daily
spend cap) goes to voicemail (`voicemail`) instead of the greeting; otherwise the LLM's prompt
cache is warmed while the greeting plays. A call that reaches the agent's `max_call_s` gets
`time_limit_line` and is hung up.
Memory (`recall`): the caller's memory is fetched while the brain waits for TTS; it goes into the
prompt and the greeting. A caller may ask to be forgotten (`forget`). Long calls fold older
turns into notes between turns (`folding`). When the call ends, the session hands what it knows
to the app's after-call jobs (`aftercall`: the summary and the caller's memory).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

from faststream.nats import NatsMessage
from ringline.contracts import subjects
from ringline.contracts.agents import Agent
from ringline.contracts.events import CALL_LIMIT, STT_EMPTY, TURN_FIRST_AUDIO
from ringline.contracts.messages import (
    CallEvent,
    CallStart,
    Control,
    Playback,
    SpeechEvent,
    Transcript,
    TurnTiming,
)
from ringline.contracts.runtime import (
    STAGE_QUERY,
    STAGE_READY,
    CallBus,
    CallSession,
    extract_context,
)

from .aftercall import FinishedCall, finished_call
from .conversation import Conversation
from .folding import FoldKeeper
from .forget import CallTools
from .llm.base import ChatModel
from .opening import admission, open_outbound, start_warm_up
from .overlap import BargeIn, ReplyHold
from .phrases import has_words, is_backchannel, is_caller_goodbye, is_forget_request
from .recall import CallerRecall, memory_block
from .settings import BrainSettings
from .silence import SilenceWatch
from .speaking import Ending, SpeakingTracker
from .talkover import TalkOver
from .tools import ToolBox
from .turn import wait_briefly
from .voice import AgentVoice
from .voicemail import VoicemailTaker

log = logging.getLogger("ringline.brain.session")

END_ACTIONS = frozenset({"ended", "hangup"})
_DIGIT = re.compile(r"^[0-9*#A-Da-d]$")


class BrainSession(CallSession):
    def __init__(self, call: CallStart, bus: CallBus, settings: BrainSettings, model: ChatModel,
                 toolbox: ToolBox | None = None, agent: Agent | None = None,
                 after_call: Callable[[FinishedCall], None] | None = None) -> None:
        super().__init__(call, bus)
        self.settings = settings
        self.agent = agent if agent is not None else Agent(id=call.agent_id)
        self.model = model
        self.after_call = after_call
        self.history = Conversation(settings.persona, settings.history_max_messages,
                                    keep_messages=settings.context_keep_messages,
                                    max_tokens=settings.context_max_tokens,
                                    not_names=frozenset({settings.agent_name}))
        self.recall = CallerRecall(bus, call, settings)
        if toolbox is not None and model.capabilities.tools and self.recall.number:  # someone to forget
            toolbox = CallTools(toolbox, self._forget)
        self.speech = SpeakingTracker(self._on_spoken, settings.playback_chars_per_s, settings.playback_slack_s)
        self.voice = AgentVoice(call.call_id, bus, settings, model, toolbox, self.history, self.speech)
        self.voice.on_turn_done = self._turn_done
        fold_with_model = settings.context_summary == "llm" or (
            settings.context_summary == "auto" and settings.resolved_chain[0] != "local")
        self.folds = FoldKeeper(bus, self.history, model, fold_with_model)
        self.silence = SilenceWatch(bus.spawn, self._on_silence, settings.silence_reprompt_s,
                                    settings.silence_goodbye_s)
        self.greeting_turn_id = ""
        self.barge_in = BargeIn(call.call_id, bus, self.speech, self.voice, settings.hold_resume_s)
        self.hold = ReplyHold(call.call_id, bus, self.voice, settings.hold_resume_s)
        self.talk = TalkOver(settings, self.speech, self.barge_in, self.hold)
        self.caller = self.talk.caller
        self.voicemail = VoicemailTaker(bus, self.voice, self.speech, self.agent.voicemail)
        self._tts_ready = asyncio.Event()  # every stage in `greet_after_stages` owns the call
        self._ready_stages: set[str] = set()
        self._greeting_task: asyncio.Task[Any] | None = None
        if settings.goodbye_phrases == "auto":
            self._goodbye_phrases = not self.voice.options.tools
        else:
            self._goodbye_phrases = settings.goodbye_phrases == "always"

    @property
    def ended(self) -> bool:
        return self.voice.ended

    async def start(self) -> None:
        self.voice.trace_context = self.trace_context
        # Events first: the TTS stage may announce itself the moment it claims the call.
        await self.bus.subscribe(subjects.event(self.call_id), self._on_event)
        await self.bus.subscribe(subjects.control(self.call_id), self._on_control)
        await self.bus.subscribe(subjects.playback(self.call_id), self._on_playback)
        await self.bus.subscribe(subjects.speech(self.call_id), self._on_speech)
        await self.bus.subscribe(subjects.transcript(self.call_id), self._on_transcript)
        # TTS may have announced itself before we subscribed: ask the owners to say so again.
        await self.bus.publish(CallEvent(call_id=self.call_id, name=STAGE_QUERY), subjects.event(self.call_id))
        self.recall.start()  # the caller's memory is fetched while we wait for TTS
        self._greeting_task = self.bus.spawn(self._greet(), "greeting")
        self.bus.spawn(self._time_limit(), "time-limit")

    async def close(self, reason: str) -> None:
        await self.voicemail.finish()  # a caller who hangs up after their message: the usual end
        self._stop()
        if self.after_call is not None and not self.voicemail.reason:  # voicemail has no conversation
            self.after_call(finished_call(self, self.settings))

    def _stop(self) -> None:
        self.voice.stop()
        self.silence.disarm()
        self.speech.close()
        if self._greeting_task is not None and self._greeting_task is not asyncio.current_task():
            self._greeting_task.cancel()

    # -- greeting -----------------------------------------------------------------------------

    async def _greet(self) -> None:
        try:
            # Admission (and its question to memory) runs while we wait for the TTS stage.
            admitted = self.bus.spawn(admission(self.bus, self.call, self.agent, self.settings), "admission")
            if not await wait_briefly(self._tts_ready, self.settings.tts_ready_timeout_s):
                log.info("call %s: no TTS ready event in %.1fs; greeting anyway",
                         self.call_id, self.settings.tts_ready_timeout_s)
            voicemail_reason = await admitted
            if self.ended:
                return
            if voicemail_reason:
                self.voice.greeted.set()
                await self.voicemail.run(voicemail_reason)
                return
            memory = await self.recall.fetched()  # started with the call: done by now, or soon given up
            if memory is not None:
                self.history.memory = memory_block(memory)
            warm = self.settings.model_copy(update={"system_prompt": self.history.system_content()})
            start_warm_up(self.bus, warm, self.model, self.voice.options.tools, self._greeting_turn)
            outbound = await open_outbound(self.bus, self.call, self.settings, self.voice)
            if outbound is not None:  # the agent placed this call: it opens with the purpose
                self.greeting_turn_id = outbound
                return
            self.greeting_turn_id = await self.voice.say_line(self.recall.greeting(self.settings), "greeting")
        finally:
            self.voice.greeted.set()

    async def _time_limit(self) -> None:
        await asyncio.sleep(self.settings.max_call_s)
        if self.ended or self.voice.ending:
            return
        log.info("call %s: reached the agent's %.0fs limit; saying goodbye", self.call_id, self.settings.max_call_s)
        await self.bus.publish(CallEvent(call_id=self.call_id, name=CALL_LIMIT,
                                         data={"max_call_s": self.settings.max_call_s}),
                               subjects.event(self.call_id))
        await self.voicemail.finish()
        await self.voice.say_goodbye(self.settings.time_limit_line, "the call reached its time limit")

    async def _greeting_turn(self) -> str:
        await self.voice.greeted.wait()
        return self.greeting_turn_id

    async def _on_event(self, event: CallEvent) -> None:
        if event.name == STT_EMPTY and self.barge_in.paused:  # a cough, a breath: nothing was said
            await self.talk.resume("no words")
        elif event.name == TURN_FIRST_AUDIO and event.turn_id and event.timing is not None:
            self.speech.first_audio(event.turn_id, event.timing.edge_sent_at or event.at)
        elif event.name == STAGE_READY:
            self._ready_stages.add(str(event.data.get("stage", "")))
            if set(self.settings.greet_after_stages) <= self._ready_stages:
                self._tts_ready.set()

    # -- what the agent said ------------------------------------------------------------------

    async def _on_playback(self, playback: Playback) -> None:
        self.speech.on_playback(playback)

    def _on_spoken(self, turn_id: str, how: Ending) -> None:
        self.voice.on_spoken(turn_id, how)
        if how not in ("interrupted", "cleared"):
            self._arm_silence()

    # -- the caller's voice -------------------------------------------------------------------

    async def _on_speech(self, event: SpeechEvent) -> None:
        if self.ended:
            return
        if self.voicemail.active:
            self.voicemail.on_speech(event)
            return
        await self.talk.on_speech(event)
        if event.kind == "stopped":
            self._arm_silence()
        else:
            self.silence.disarm()

    # -- the caller's words -------------------------------------------------------------------

    async def _on_transcript(self, transcript: Transcript, msg: NatsMessage) -> None:
        if self.ended:
            return
        if self.voicemail.active:
            self.voicemail.on_transcript(transcript)
            return
        parent = extract_context(msg.headers) if "traceparent" in (msg.headers or {}) else None
        if transcript.is_final and transcript.end_of_turn:
            await self._on_final(transcript, parent)
            return
        if not has_words(transcript.text) or is_backchannel(transcript.text):
            if self.barge_in.paused:
                await self.talk.resume("backchannel" if has_words(transcript.text) else "no words")
            return
        self.silence.disarm()
        started_at = transcript.speech_started_at or self.caller.started_at
        await self.barge_in("interim", started_at, self.caller.voiced_ms, transcript.utterance_id)
        if self.settings.preemptive_generation and not transcript.is_final:
            self.voice.guess(transcript, parent)

    def _just_a_backchannel(self, transcript: Transcript) -> bool:
        """Only "uh-huh"/"okay" said while (or just after) the agent talked: not a turn."""
        if self.barge_in.owed or not is_backchannel(transcript.text):
            return False
        if self.speech.speaking:
            return True
        if self.voice.last_text.rstrip().endswith("?"):
            return False  # "yes" to the agent's question is an answer
        return self.speech.spoke_since(transcript.speech_started_at or transcript.emitted_at,
                                       self.settings.backchannel_grace_s)

    async def _on_final(self, transcript: Transcript, parent: Any) -> None:
        if self.hold.active and (not has_words(transcript.text) or is_backchannel(transcript.text)):
            await self.hold.let_go()  # only a noise or an "um": the held reply goes out
            return
        self.hold.drop()
        if not has_words(transcript.text) or self.voice.ending:
            self.voice.discard_guess()
            await self.talk.resume("no words")
            self._arm_silence()
            return
        if self._just_a_backchannel(transcript):
            log.info("call %s: backchannel %r while the agent talks; no new turn", self.call_id, transcript.text)
            self.voice.discard_guess()
            await self.talk.resume("backchannel")
            self._arm_silence()
            return
        started_at = transcript.speech_started_at or self.caller.started_at
        await self.barge_in("final", started_at, self.caller.voiced_ms, transcript.utterance_id)
        self.barge_in.owed = False
        self.silence.reset()
        self._tts_ready.set()  # the caller is talking: greet (if not yet) without waiting
        if self._goodbye_phrases and is_caller_goodbye(transcript.text):
            self.voice.discard_guess()
            self.voice.cancel()
            self.history.add_caller(transcript.text, transcript.utterance_id)
            await self.voice.say_goodbye(self.settings.goodbye_line, "the caller said goodbye",
                                         transcript.utterance_id)
            return
        if is_forget_request(transcript.text):
            await self._forget_on_request(transcript)
            return
        self.folds.cancel()  # the caller's turn goes first on the model
        guess = self.voice.take_guess(transcript)
        self.voice.cancel()  # a turn still thinking about the caller's previous words
        self.history.add_caller(transcript.text, transcript.utterance_id)
        extra = end_of_turn(transcript)
        if guess is not None:
            guess.turn.extra.update(extra)
            await self.voice.keep_guess(guess, transcript)
            return
        timing = TurnTiming(speech_ended_at=transcript.speech_ended_at, transcript_at=transcript.emitted_at,
                            stt_provider=transcript.provider)
        self.voice.start_turn(in_reply_to=transcript.utterance_id, timing=timing, parent=parent, extra=extra)

    # -- control ------------------------------------------------------------------------------

    async def _on_control(self, control: Control) -> None:
        if control.action in END_ACTIONS:
            await self.voicemail.finish()
            if not self.ended:
                log.info("call %s %s: brain stops", self.call_id, control.action)
            self._stop()
        elif control.action == "interrupt":
            for turn in self.speech.speaking_turns():
                if control.turn_id in ("", turn.turn_id):
                    self.speech.interrupt(turn.turn_id)
            if control.turn_id in ("", self.voice.turn_id):
                self.voice.cancel()
        elif control.action == "dtmf":
            await self._on_dtmf(control)

    async def _on_dtmf(self, control: Control) -> None:
        digit = control.digit.strip()
        if self.ended or self.voice.ending or self.voicemail.active or not _DIGIT.match(digit):
            return
        log.info("call %s: caller pressed %s", self.call_id, digit)
        self.silence.reset()
        await self.barge_in("dtmf", control.at, 0.0, "")
        self.barge_in.owed = False
        self.hold.drop()
        self.voice.discard_guess()
        self.voice.cancel()
        self.folds.cancel()
        self._tts_ready.set()
        self.history.add_caller_event(f"pressed {digit}")
        canned = self.settings.dtmf_replies.get(digit)
        if canned:
            await self.voice.say_line(canned, "answer")
            return
        self.voice.start_turn(in_reply_to="", timing=TurnTiming(transcript_at=control.at), extra={"dtmf": digit})

    # -- memory -------------------------------------------------------------------------------

    async def _forget(self) -> bool:
        """Delete the caller's memory and keep nothing of this call (the phrase rule or `forget_me`)."""
        self.history.memory = ""
        return await self.recall.forget()

    async def _forget_on_request(self, transcript: Transcript) -> None:
        self.voice.discard_guess()
        self.voice.cancel()
        self.history.add_caller(transcript.text, transcript.utterance_id)
        done = await self._forget()
        line = self.settings.forget_line if done else self.settings.forget_failed_line
        await self.voice.say_line(line, "answer", transcript.utterance_id)

    def _turn_done(self) -> None:
        """An LLM turn finished generating: fold a long call's history now, while the reply plays."""
        self.folds.after_turn(self.voice.turn_id)
        self._arm_silence()

    # -- silence ------------------------------------------------------------------------------

    def _quiet(self) -> bool:
        """Nobody is talking and nothing is about to be said."""
        return not (self.ended or self.voice.ending or self.speech.speaking or self.caller.active
                    or self.voice.running or self.voice.guessing or self.voicemail.active)

    def _arm_silence(self) -> None:
        if self._quiet():
            self.silence.arm()

    async def _on_silence(self, count: int) -> bool:
        if not self._quiet():
            return False
        if count == 0:
            log.info("call %s: caller silent for %.1fs; re-prompting", self.call_id, self.silence.first_s)
            await self.voice.say_line(self.settings.reprompt_line, "reprompt")
        else:
            await self.voice.say_goodbye(self.settings.silence_goodbye_line, "the caller was silent")
        return True


def end_of_turn(transcript: Transcript) -> dict[str, Any]:
    """How long the caller waited for the end of their turn to be detected, and why it ended."""
    data: dict[str, Any] = {}
    if transcript.speech_ended_at and transcript.emitted_at:
        data["end_of_turn_ms"] = round((transcript.emitted_at - transcript.speech_ended_at) * 1000, 1)
    if transcript.end_reason:
        data["end_of_turn_reason"] = transcript.end_reason
    return data
