"""Plays a scenario on a live phone line, step by step, in real time.

The greeting is heard out first. A step that speaks waits for the agent's reply to finish
playing, unless the next step is tied to that reply (`interrupt`, `backchannel`, `hangup` with
`after_ms`, `expect_hangup`): then the reply's listening window is handed on, and that step acts
a set time after the reply's first audio. Every wait is bounded; what went wrong becomes a line
in `CallResult.problems`. Verdicts are computed afterwards by `verdicts.judge`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

from ringline.contracts.messages import is_replayed_mark, parse_mark

from .line import Listening, PhoneLine, Speaking
from .results import CallResult, StepResult, TurnResult
from .scenario import (
    Backchannel,
    Dtmf,
    ExpectHangup,
    Hangup,
    Interrupt,
    Say,
    Scenario,
    Speaks,
    Step,
    Wait,
    tied_to_reply,
)
from .speech import Utterance


@dataclass(frozen=True)
class Timeouts:
    reply: float = 20.0  # for a reply (or the greeting) to start
    greeting: float = 20.0
    quiet: float = 1.0  # silence after the agent's audio that ends its turn
    max_reply: float = 90.0  # for a reply to finish playing


def agent_turn(window: Listening, line: PhoneLine, speaking: Speaking | None) -> TurnResult:
    turn_ids: list[str] = []
    for name in window.marks:
        turn_id = parse_mark(name)[0] or name
        if turn_id not in turn_ids:
            turn_ids.append(turn_id)
    # The agent went on after the last clear (it only paused) when its marks came back replayed
    # ("turn~n:seq": the edge sending the paused audio again).
    resumed = any(is_replayed_mark(name) for name in window.marks[window.marks_before_clear:])
    turn = TurnResult(speaker="agent", turn_ids=turn_ids, started_at=window.first_media_at or 0.0,
                      ended_at=max(line.playback.clock, window.last_media_at),
                      audio_s=round(window.frames * 0.02, 2), interrupted=window.cleared > 0 and not resumed,
                      paused=window.cleared if resumed else max(0, window.cleared - 1))
    if speaking is not None and window.first_media_at is not None:
        speech_end = speaking.speech_end_at or speaking.ended_at
        turn.mouth_to_ear_ms = round((window.first_media_at - speech_end) * 1000, 1)
        if turn.mouth_to_ear_ms < 0:
            turn.note = "the agent started before the caller finished"
    return turn


class ScenarioRunner:
    def __init__(self, line: PhoneLine, result: CallResult, timeouts: Timeouts) -> None:
        self.line = line
        self.result = result
        self.t = timeouts
        self._pending: tuple[Listening, Speaking | None] | None = None  # a reply window handed on

    def problem(self, text: str) -> None:
        self.result.problems.append(text)

    async def run(self, scenario: Scenario, garbage: Sequence[str] = ()) -> None:
        await self._greeting()
        for raw in garbage:  # fault injection: the call must carry on regardless
            self.line.send_raw(raw)
        steps = scenario.steps
        try:
            for i, step in enumerate(steps):
                if self.line.closed.is_set() and not isinstance(step, ExpectHangup):
                    what = (f"the caller said {step.label!r}" if isinstance(step, Say)
                            else f"step {i + 1} ({step.label})")
                    self.problem(f"the call ended before {what}")
                    return
                outcome = StepResult(index=i + 1, kind=step.kind, label=step.label, started_at=time.time())
                self.result.steps.append(outcome)
                await self._step(step, outcome, steps[i + 1] if i + 1 < len(steps) else None)
                outcome.ended_at = time.time()
                if isinstance(step, Hangup):
                    if i + 1 < len(steps):
                        self.problem(f"the caller hung up with {len(steps) - i - 1} step(s) left")
                    return
        finally:
            self.result.turns.sort(key=lambda t: t.started_at or float("inf"))

    async def _step(self, step: Step, outcome: StepResult, next_step: Step | None) -> None:
        tied = tied_to_reply(next_step)
        match step:
            case Say():
                window = self.line.listen()
                speaking = await self._speak(step, outcome)
                wait = step.wait_reply if step.wait_reply is not None else not tied
                await self._after(window, speaking, step.label, wait, tied)
            case Interrupt():
                await self._interrupt(step, outcome, tied)
            case Backchannel():
                await self._backchannel(step, outcome, tied)
            case Wait():
                window = self.line.listen()
                await self._sleep_until(time.time() + step.ms / 1000)
                if window.got_media.is_set():
                    outcome.note = "the agent spoke during the silence"
                await self._after(window, None, step.label, wait=window.got_media.is_set() and not tied,
                                  tied=tied, required=False)
            case Dtmf():
                window = self.line.listen()
                self.line.press(step.digit)
                outcome.acted_at = time.time()
                await self._after(window, None, step.label, step.wait_reply and not tied, tied)
            case Hangup():
                if step.after_ms is not None and (anchor := await self._reply_start(outcome, step.label)):
                    await self._sleep_until((anchor[0].first_media_at or 0.0) + step.after_ms / 1000)
                    playing = not self.line.playback.idle(time.time())
                    outcome.note = "while the reply was playing" if playing else "the reply had already finished"
                    self.result.turns.append(agent_turn(anchor[0], self.line, anchor[1]))
                outcome.acted_at = time.time()
                await self.line.hang_up()
            case ExpectHangup():
                await self._expect_hangup(step, outcome)

    # -- pieces ------------------------------------------------------------------------------

    async def _greeting(self) -> None:
        greeting = self.line.listen()
        if await self.line.wait_media(greeting, self.t.greeting):
            if not await self.line.wait_quiet(self.t.quiet, self.t.max_reply):
                self.problem(f"the greeting was still playing after {self.t.max_reply:.0f} s")
            self.result.turns.append(agent_turn(greeting, self.line, None))
        elif not self.line.closed.is_set():
            self.problem(f"no greeting within {self.t.greeting:.0f} s")

    async def _speak(self, step: Speaks, outcome: StepResult) -> Speaking:
        utterance: Utterance | None = step.utterance
        if utterance is None:
            raise ValueError(f"step {outcome.index} was not prepared: call scenario.prepare() first")
        speaking = self.line.speak(utterance)
        try:
            await asyncio.wait_for(speaking.done.wait(), utterance.duration_s + 5.0)
        except TimeoutError:
            self.problem(f"could not finish sending {step.label!r}")
        outcome.speech_onset_at = speaking.onset_at or None
        outcome.speech_end_at = speaking.speech_end_at or None
        outcome.voiced_ms = round(utterance.voiced_ms, 1)
        outcome.pauses = speaking.pause_spans()
        outcome.acted_at = speaking.onset_at or speaking.started_at
        self.result.turns.append(TurnResult(
            speaker="caller", text=utterance.text or f"[{utterance.label}]", started_at=speaking.started_at,
            ended_at=speaking.speech_end_at or speaking.ended_at, audio_s=round(utterance.duration_s, 2)))
        return speaking

    async def _after(self, window: Listening, speaking: Speaking | None, label: str, wait: bool, tied: bool,
                     required: bool = True) -> None:
        """Hear the reply out (`wait`), or hand its window on to the next step (`tied`)."""
        if tied:
            self._pending = (window, speaking)
        elif wait:
            await self._hear_reply(window, speaking, label, required)

    async def _hear_reply(self, window: Listening, speaking: Speaking | None, label: str,
                          required: bool = True) -> None:
        if not await self.line.wait_media(window, self.t.reply):
            if required and not self.line.closed.is_set():
                self.problem(f"no reply to {label!r} within {self.t.reply:.0f} s")
            return
        if not await self.line.wait_quiet(self.t.quiet, self.t.max_reply):
            self.problem(f"the reply to {label!r} was still playing after {self.t.max_reply:.0f} s")
        self.result.turns.append(agent_turn(window, self.line, speaking))

    async def _reply_start(self, outcome: StepResult, label: str) -> tuple[Listening, Speaking | None] | None:
        """The agent's next reply: the window handed on by the step before, or a new one."""
        window, speaking = self._pending or (self.line.listen(), None)
        self._pending = None
        if not await self.line.wait_media(window, self.t.reply) or window.first_media_at is None:
            if not self.line.closed.is_set():
                self.problem(f"{label!r}: no agent reply to act on within {self.t.reply:.0f} s")
            return None
        outcome.reply_started_at = window.first_media_at
        return window, speaking

    @staticmethod
    def _start_for_onset(step: Speaks, onset: float) -> float:
        """When to start sending so that the speech itself (after the lead silence) begins at `onset`."""
        lead_s = step.utterance.onset_frame * 0.02 if step.utterance is not None else 0.0
        return onset - lead_s

    async def _sleep_until(self, moment: float) -> None:
        """Real-time sleep that ends early when the call does."""
        delay = moment - time.time()
        if delay > 0:
            try:
                await asyncio.wait_for(self.line.closed.wait(), delay)
            except TimeoutError:
                pass

    async def _interrupt(self, step: Interrupt, outcome: StepResult, tied: bool) -> None:
        anchor = await self._reply_start(outcome, step.label)
        if anchor is None:
            return
        window, before = anchor
        await self._sleep_until(self._start_for_onset(step, (window.first_media_at or 0.0) + step.after_ms / 1000))
        if self.line.playback.idle(time.time()):
            outcome.note = "the reply had finished playing before the interruption"
        speaking = await self._speak(step, outcome)
        self.result.turns.append(agent_turn(window, self.line, before))  # the interrupted reply
        # The answer to the interruption: audio from here on (a reply cannot come within the
        # utterance's trailing silence, so nothing of it is missed).
        reply = self.line.listen()
        await self._after(reply, speaking, step.label, not tied, tied)

    async def _backchannel(self, step: Backchannel, outcome: StepResult, tied: bool) -> None:
        anchor = await self._reply_start(outcome, step.label)
        if anchor is None:
            return
        window, before = anchor
        await self._sleep_until(self._start_for_onset(step, (window.first_media_at or 0.0) + step.after_ms / 1000))
        if self.line.playback.idle(time.time()):
            outcome.note = "the reply had finished playing before the backchannel"
        await self._speak(step, outcome)
        if tied:  # the next step acts on the same reply (another backchannel, its `after_ms` from its start)
            self._pending = anchor
            return
        if not await self.line.wait_quiet(self.t.quiet, self.t.max_reply):
            self.problem(f"the reply around {step.label!r} was still playing after {self.t.max_reply:.0f} s")
        self.result.turns.append(agent_turn(window, self.line, before))

    async def _expect_hangup(self, step: ExpectHangup, outcome: StepResult) -> None:
        window, before = self._pending or (self.line.listen(), None)
        self._pending = None
        try:
            await asyncio.wait_for(self.line.closed.wait(), step.timeout_s)
        except TimeoutError:
            pass
        outcome.agent_hung_up = self.line.timeline.closed_by == "agent"
        if window.got_media.is_set():
            self.result.turns.append(agent_turn(window, self.line, before))
        if not outcome.agent_hung_up:
            self.problem(f"the agent did not hang up within {step.timeout_s:g} s")
