"""The brain's per-call session: it owns the call's turn-taking state and applies decisions.

Everything that happens on the call is an event: the caller's voice activity (`speech`) and
words (`transcript`), the marks the caller heard (`playback`), controls (hang-up, interrupt, a
key press), stage events (`event`), the session's own clocks (`timers`) and what the agent's
voice did (a chunk out, a turn done). `dispatch` hands each to `decide(state, event)`, a pure
function that returns actions, and applies them (`effects`): first to the one `TurnState`,
then on the bus. What the decisions are is in `decide`, `talkover` and `speaking`.

At call start (`opening`): a call the agent cannot take (allow-list, business hours, busy, daily
spend cap) goes to voicemail (`voicemail`) instead of the greeting; otherwise the LLM's prompt
cache is warmed while the greeting plays. A call that reaches the agent's `max_call_s` gets
`time_limit_line` and is hung up. Memory (`recall`): the caller's memory is fetched while the
brain waits for TTS; it goes into the prompt and the greeting. A caller may ask to be forgotten
(`forget`). Long calls fold older turns into notes between turns (`folding`). When the call ends,
the session hands what it knows to the app's after-call jobs (`aftercall`).

Takeover: `snapshot()` is plain data (JSON/msgpack) another replica passes to `restore()` before
`start()`; that `start` greets only a call whose greeting was not said yet, and carries the call
on (`Restored`: clocks re-armed, a reply whose generation died made again). The snapshot:

- `version` (1), `call_id` (equal snapshots mean nothing changed: no timestamp in it);
- `state`: `TurnState.to_dict()`: `stage` (opening/talking/ending/ended), `phase` (derived, for
  reading), `greeted`, `greeting_turn_id`, `voicemail` (reason, "" if none), `caller`
  (utterance_id, started_at, voiced_ms, active, resumed_ms), `turns` (each agent turn that went
  out: turn_id, kind, started_at, `chunks` as [seq, text] pairs published so far, final_seq,
  heard_seq: the last chunk the caller heard, ended: heard/timeout/cleared/interrupted or None,
  ended_at, paused, first_audio_at), `last_finished_at`, `agent` (the turn in flight: turn_id,
  generating, finished: generation ran to its end, guessing, held_turn_id), `paused_at`,
  `pause_onset`, `owed`, `silence_count`, `last_text`, `hangup` (turn_id, text, reason,
  transfer_to, started_at, done; or None);
- `history`: `Conversation.to_dict()`: `turns` (role, text, turn_id, interrupted, extra),
  `start` (folded before it), `generation`, `summary` parts, `call_state`, `memory`, `notes`;
- `recall`: `forgotten` (keep nothing of this call), `followed_up`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from faststream.nats import NatsMessage

from ringline.contracts import subjects
from ringline.contracts.agents import Agent
from ringline.contracts.events import EDGE_TAKEOVER, STAGE_TAKEOVER, STT_EMPTY, TURN_FIRST_AUDIO
from ringline.contracts.messages import CallEvent, CallStart, Control, Playback, SpeechEvent, Transcript, now
from ringline.contracts.runtime import STAGE_QUERY, STAGE_READY, CallBus, CallSession, extract_context

from . import actions as a
from .aftercall import FinishedCall, finished_call
from .conversation import Conversation
from .decide import decide
from .effects import CallEffects
from .events import Restored, Words
from .folding import FoldKeeper
from .forget import CallTools
from .llm.base import ChatModel
from .opening import admission, open_outbound, start_warm_up
from .recall import CallerRecall, memory_block
from .rules import Rules
from .settings import BrainSettings
from .state import TurnState
from .timers import Timers
from .tools import ToolBox
from .transition import apply
from .turn import wait_briefly
from .voice import AgentVoice
from .voicemail import VoicemailTaker

log = logging.getLogger("ringline.brain.session")

SNAPSHOT_VERSION = 1


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
        self.state = TurnState()  # the one owner of the call's turn-taking state
        self.voice = AgentVoice(call.call_id, bus, settings, model, toolbox, self.history, self.state, self.dispatch)
        if settings.goodbye_phrases == "auto":
            goodbye_phrases = not self.voice.options.tools
        else:
            goodbye_phrases = settings.goodbye_phrases == "always"
        self.rules = Rules.of(settings, goodbye_phrases)
        fold_with_model = settings.context_summary == "llm" or (
            settings.context_summary == "auto" and settings.resolved_chain[0] != "local")
        self.folds = FoldKeeper(bus, self.history, model, fold_with_model)
        self.timers = Timers(bus.spawn, self.dispatch)
        self.effects = CallEffects(self)
        self.voicemail = VoicemailTaker(bus, self.voice, self.agent.voicemail)
        self.tts_ready = asyncio.Event()  # every stage in `greet_after_stages` owns the call
        self._ready_stages: set[str] = set()
        self._greeting_task: asyncio.Task[Any] | None = None
        self._finished: dict[str, asyncio.Event] = {}  # turns someone waits to be heard
        self._restored = False
        self._detached = False  # the call goes on on another replica: this one does nothing more

    @property
    def ended(self) -> bool:
        return self.state.ended

    async def dispatch(self, event: object) -> None:
        """Decide what `event` means for the call and do it."""
        if self._detached:
            return
        await self.effects.run(decide(self.state, event, self.rules, now()))
        if self.state.ended:
            self._cancel_greeting()

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
        limit = self.settings.max_call_s
        if self._restored:
            limit = max(0.0, limit - (now() - self.call.started_at))
        self.timers.arm("time-limit", limit)
        if self.state.greeted:  # a call taken over: the caller was greeted already
            self.voice.greeted.set()
        else:
            self.recall.start()  # the caller's memory is fetched while we wait for TTS
            self._greeting_task = self.bus.spawn(self._greet(), "greeting")
        if self._restored:
            await self.dispatch(Restored())
            if self.state.voicemail and self.state.stage == "talking":  # the caller was leaving a message
                self._greeting_task = self.bus.spawn(self._take_voicemail(self.state.voicemail, True), "voicemail")

    async def close(self, reason: str) -> None:
        await self.effects.run([a.FinishVoicemail(), a.Stop(reason)])  # a caller who hangs up after their message
        self._cancel_greeting()
        if self.after_call is not None and not self.voicemail.reason:  # voicemail has no conversation
            self.after_call(finished_call(self, self.settings))

    async def detach(self) -> None:
        """The call goes on elsewhere: stop the clocks and the LLM, say and record nothing more."""
        self._detached = True
        self.timers.close()
        self.voice.stop()
        self._cancel_greeting()

    def _cancel_greeting(self) -> None:
        if self._greeting_task is not None and self._greeting_task is not asyncio.current_task():
            self._greeting_task.cancel()

    # -- checkpoints --------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """What a replica taking the call over needs (plain data; the fields are in the module doc)."""
        return {"version": SNAPSHOT_VERSION, "call_id": self.call_id, "state": self.state.to_dict(),
                "history": self.history.to_dict(),
                "recall": {"forgotten": self.recall.forgotten, "followed_up": list(self.recall.followed_up)}}

    def restore(self, state: dict[str, Any]) -> None:
        """Carry on from `snapshot()` of another replica; call before `start()`."""
        vars(self.state).update(vars(TurnState.from_dict(state.get("state", {}))))
        self.history.restore(state.get("history", {}))
        recall = state.get("recall", {})
        self.recall.forgotten = bool(recall.get("forgotten"))
        self.recall.followed_up = list(recall.get("followed_up", []))
        self._restored = True

    # -- the call's opening -------------------------------------------------------------------

    async def _greet(self) -> None:
        try:
            greeting = await self._opening()
            if greeting is not None:
                apply(self.state, a.Greeted(greeting))
        finally:
            self.voice.greeted.set()

    async def _opening(self) -> str | None:
        """The greeting's turn id ("" when the call is ending); None when nothing was said."""
        # Admission (and its question to memory) runs while we wait for the TTS stage.
        admitted = self.bus.spawn(admission(self.bus, self.call, self.agent, self.settings), "admission")
        if not await wait_briefly(self.tts_ready, self.settings.tts_ready_timeout_s):
            log.info("call %s: no TTS ready event in %.1fs; greeting anyway",
                     self.call_id, self.settings.tts_ready_timeout_s)
        voicemail_reason = await admitted
        if self.ended:
            return None
        if voicemail_reason:
            await self._take_voicemail(voicemail_reason)
            return ""
        memory = await self.recall.fetched()  # started with the call: done by now, or soon given up
        if memory is not None:
            self.history.memory = memory_block(memory)
        warm = self.settings.model_copy(update={"system_prompt": self.history.system_content()})
        start_warm_up(self.bus, warm, self.model, self.voice.options.tools, self._greeting_turn)
        outbound = await open_outbound(self.bus, self.call, self.settings, self)
        if outbound is not None:  # the agent placed this call: it opens with the purpose
            return outbound
        return await self.voice.say_line(self.recall.greeting(self.settings), "greeting")

    async def _take_voicemail(self, reason: str, prompted: bool = False) -> None:
        """Prompt, listen, thank and hang up. Returns when the goodbye is on its way. `prompted`:
        a call taken over while the caller left their message (what they said before is lost)."""
        if prompted:
            self.voicemail.carry_on(reason)
        else:
            await self.effects.run([a.VoicemailStarted(reason), a.Greeted("")])
            self.voice.greeted.set()
            prompt = await self.voicemail.begin(reason)
            await self._wait_heard(prompt, self.rules.playback_timeout(self.agent.voicemail.prompt) + 1.0)
        await self.voicemail.listen()
        await self.voicemail.finish()
        if not self.ended:
            await self.say_goodbye(self.agent.voicemail.goodbye, f"voicemail taken ({reason})")

    async def _greeting_turn(self) -> str:
        await self.voice.greeted.wait()
        return self.state.greeting_turn_id

    async def say_line(self, text: str, kind: Any, in_reply_to: str = "") -> str:
        return await self.voice.say_line(text, kind, in_reply_to)

    async def say_goodbye(self, text: str, reason: str) -> None:
        """Say `text`, then hang up once it has been heard."""
        await self.effects.run([a.SayGoodbye(text, reason)])

    async def _wait_heard(self, turn_id: str, timeout: float) -> None:
        turn = self.state.turns.get(turn_id)
        if turn is not None and turn.ended is None:
            await wait_briefly(self._finished.setdefault(turn_id, asyncio.Event()), timeout)

    def turn_ended(self, turn_id: str) -> None:
        waiting = self._finished.pop(turn_id, None)
        if waiting is not None:
            waiting.set()

    # -- the bus ------------------------------------------------------------------------------

    async def _on_event(self, event: CallEvent) -> None:
        if event.name == STAGE_READY:
            self._ready_stages.add(str(event.data.get("stage", "")))
            if set(self.settings.greet_after_stages) <= self._ready_stages:
                self.tts_ready.set()
        elif event.name in (STT_EMPTY, TURN_FIRST_AUDIO, EDGE_TAKEOVER, STAGE_TAKEOVER):  # the rest is for the record
            await self.dispatch(event)

    async def _on_playback(self, playback: Playback) -> None:
        await self.dispatch(playback)

    async def _on_speech(self, event: SpeechEvent) -> None:
        await self.dispatch(event)

    async def _on_transcript(self, transcript: Transcript, msg: NatsMessage) -> None:
        parent = extract_context(msg.headers) if "traceparent" in (msg.headers or {}) else None
        await self.dispatch(Words(transcript, parent))

    async def _on_control(self, control: Control) -> None:
        await self.dispatch(control)

    # -- memory -------------------------------------------------------------------------------

    async def _forget(self) -> bool:
        """Delete the caller's memory and keep nothing of this call (the phrase rule or `forget_me`)."""
        self.history.memory = ""
        return await self.recall.forget()

    async def forget_on_request(self, transcript: Transcript) -> None:
        self.voice.discard_guess()
        self.voice.cancel()
        self.history.add_caller(transcript.text, transcript.utterance_id)
        done = await self._forget()
        line = self.settings.forget_line if done else self.settings.forget_failed_line
        await self.voice.say_line(line, "answer", transcript.utterance_id)
