"""The calls in progress as the dashboard shows them, built from what flows on the bus. Pure: no
I/O, no clock (times come from the messages).

Each message updates one call and returns the view a browser should get (or None when nothing a
viewer sees changed). State is one named value per call:

    connecting -> caller speaking -> thinking -> agent speaking -> (paused) -> ... -> ended

"agent speaking" lasts until `speaking_until` once the TTS stage has said how long the turn's
audio is (`tts.turn`), so a viewer's clock can show "listening" after it without a message.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ringline.contracts.events import (
    CALL_TRANSFER,
    TTS_TURN,
    TURN_BARGE_IN,
    TURN_FIRST_AUDIO,
    TURN_PAUSED,
    TURN_RESUMED,
    VOICEMAIL_STARTED,
)
from ringline.contracts.messages import CallEnd, CallEvent, CallStart, CallSummary, Control, SpeechEvent, Transcript

CONNECTING, CALLER, THINKING, AGENT, PAUSED, VOICEMAIL, ENDED = (
    "connecting", "caller speaking", "thinking", "agent speaking", "paused", "voicemail", "ended")
MAX_ENDED = 50  # ended calls kept for viewers that join late


@dataclass
class LiveCall:
    call_id: str
    agent_id: str = ""
    caller: str = ""
    callee: str = ""
    direction: str = "inbound"
    started_at: float = 0.0
    state: str = CONNECTING
    turns: int = 0  # agent turns heard so far
    last_total_ms: float | None = None  # the last turn's mouth-to-ear as the edge measured it
    speaking_until: float = 0.0  # when the current agent turn's audio ends (0: not known yet)
    ended_at: float = 0.0
    end_reason: str = ""
    interruptions: int = 0
    _first_audio: dict[str, float] = field(default_factory=dict, repr=False)

    def view(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_first_audio")
        return data


class LiveBoard:
    def __init__(self) -> None:
        self.calls: dict[str, LiveCall] = {}

    def views(self) -> list[dict[str, Any]]:
        return [c.view() for c in sorted(self.calls.values(), key=lambda c: c.started_at, reverse=True)]

    def seed(self, summary: CallSummary) -> dict[str, Any] | None:
        """A call the memory service still holds open (it began before this edge was watching)."""
        if summary.call_id in self.calls or summary.ended_at:
            return None
        call = LiveCall(call_id=summary.call_id, agent_id=summary.agent_id, caller=summary.caller,
                        callee=summary.callee, direction=summary.direction, started_at=summary.started_at,
                        state=THINKING if summary.turns else CONNECTING)
        self.calls[call.call_id] = call
        return call.view()

    def on_start(self, start: CallStart) -> dict[str, Any]:
        call = self.calls.get(start.call_id)
        if call is None or call.state == ENDED:  # a new call, or the same call id placed again
            call = LiveCall(call_id=start.call_id)
            self.calls[call.call_id] = call
        call.agent_id, call.caller, call.callee = start.agent_id, start.caller, start.callee
        call.direction, call.started_at = start.direction, start.started_at
        return call.view()

    def on_end(self, end: CallEnd) -> dict[str, Any] | None:
        call = self.calls.get(end.call_id)
        if call is None or call.state == ENDED:
            return None
        call.state, call.ended_at, call.end_reason = ENDED, end.ended_at, end.reason
        self._forget_old()
        return call.view()

    def on_control(self, control: Control) -> dict[str, Any] | None:
        if control.action == "ended":
            return self.on_end(CallEnd(call_id=control.call_id, reason=control.reason or "ended",
                                       ended_at=control.at))
        return None

    def on_speech(self, speech: SpeechEvent) -> dict[str, Any] | None:
        call = self._live(speech.call_id)
        if call is None or speech.kind == "continuing" or call.state == VOICEMAIL:
            return None
        if speech.kind == "started" and call.state != PAUSED:
            return self._set(call, CALLER)
        return None

    def on_transcript(self, transcript: Transcript) -> dict[str, Any] | None:
        call = self._live(transcript.call_id)
        if call is None or not (transcript.is_final and transcript.end_of_turn and transcript.text.strip()):
            return None
        return None if call.state == VOICEMAIL else self._set(call, THINKING)

    def on_event(self, event: CallEvent) -> dict[str, Any] | None:
        call = self._live(event.call_id)
        if call is None:
            return None
        name = event.name
        if name == TURN_FIRST_AUDIO:
            call.turns += 1
            call.speaking_until = 0.0
            call._first_audio[event.turn_id] = event.timing.edge_sent_at if event.timing else event.at
            total = event.timing.stages_ms().get("total") if event.timing else None
            if total is not None:
                call.last_total_ms = total
            return self._set(call, AGENT, force=True)
        if name == TTS_TURN:
            audio_ms, began = event.data.get("audio_ms"), call._first_audio.get(event.turn_id)
            if isinstance(audio_ms, int | float) and began and call.state == AGENT:
                call.speaking_until = round(began + audio_ms / 1000, 3)
                return call.view()
        elif name == TURN_PAUSED:
            return self._set(call, PAUSED)
        elif name == TURN_RESUMED:
            return self._set(call, AGENT)
        elif name == TURN_BARGE_IN:
            call.interruptions += 1
            return self._set(call, CALLER, force=True)
        elif name == VOICEMAIL_STARTED:
            return self._set(call, VOICEMAIL)
        elif name == CALL_TRANSFER:
            call.end_reason = f"transfer to {event.data.get('target', '?')}"
            return call.view()
        return None

    def _live(self, call_id: str) -> LiveCall | None:
        call = self.calls.get(call_id)
        return call if call is not None and call.state != ENDED else None

    @staticmethod
    def _set(call: LiveCall, state: str, force: bool = False) -> dict[str, Any] | None:
        if call.state == state and not force:
            return None
        call.state = state
        return call.view()

    def _forget_old(self) -> None:
        ended = sorted((c for c in self.calls.values() if c.state == ENDED), key=lambda c: c.ended_at)
        for call in ended[:max(0, len(ended) - MAX_ENDED)]:
            del self.calls[call.call_id]

