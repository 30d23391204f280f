"""Voice activity beside a cloud recognizer: the local VAD on the caller's frames, whatever the STT.

A cloud stream (Deepgram) ends turns itself, but its own voice-activity messages say only "speech
started", with no running length. The brain's barge-in (pause at `barge_in_min_ms`, interrupt at
`barge_in_confirm_ms`, resume over a backchannel) needs the voiced length as the caller speaks,
so the same webrtcvad `Endpointer` the local path uses hears every frame here too, and
`CloudVoice` turns its decisions into speech events of the cloud's turn:

- a turn is one utterance id, from the first speech (the VAD's or the cloud's, whichever comes
  first) to the cloud's end of turn (`turn_ended`);
- `started`, `continuing` (every ~50 ms of voiced audio) and `stopped` carry the voiced
  milliseconds of the whole turn so far (a pause inside the turn does not reset them);
- speech the caller goes on with after the cloud ended the turn opens the next turn;
- `too_long` tells the session when the turn has run past the maximum turn length, so it can ask
  the cloud to finalize now (the local path stops at `max_utterance_ms`; so does this one).

Pure: no I/O. The session publishes the events and talks to the cloud.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Literal

import numpy as np

from ringline.contracts.messages import SpeechEvent

from .vad import Endpointer, EndpointerConfig, VadEvent

SpeechKind = Literal["started", "continuing", "stopped"]
_NEVER_MS = 24 * 3600 * 1000  # the VAD never cuts a segment on length: the turn's length counts


class CloudVoice:
    def __init__(self, call_id: str, config: EndpointerConfig | None = None) -> None:
        config = config or EndpointerConfig()
        self.call_id = call_id
        self.max_turn_ms = config.max_utterance_ms
        # Speech start/stop only: no early decodes (`paused`), no cut on length inside the VAD.
        self.endpointer = Endpointer(replace(config, early_silence_ms=0, max_utterance_ms=_NEVER_MS))
        self.utterance_id: str | None = None
        self.started_at = 0.0
        self.turns = 0
        self._voiced_before = 0.0  # voiced ms of the turn's VAD segments that already stopped
        self._segment_base = 0.0  # voiced ms of the current segment before it joined this turn
        self._segment_in_turn = False  # the VAD segment in progress belongs to the open turn
        self._open = False  # a `started` went out for this turn and no `stopped` since
        self._published = False  # any speech event went out for this turn
        self._finalizing = False

    @property
    def voiced_ms(self) -> float:
        """Voiced audio of the open turn so far."""
        return self._turn_voiced(self.endpointer.voiced_ms)

    def _turn_voiced(self, segment_ms: float) -> float:
        current = segment_ms - self._segment_base if self._segment_in_turn else 0.0
        return self._voiced_before + max(0.0, current)

    def begin(self, started_at: float) -> str:
        """The open turn's utterance id; opens one (speech started at `started_at`) if none is."""
        if self.utterance_id is None:
            self.utterance_id = f"u-{uuid.uuid4().hex[:12]}"
            self.started_at = started_at
            self.turns += 1
            self._voiced_before = 0.0
            self._segment_in_turn = False
            self._open = self._published = self._finalizing = False
        return self.utterance_id

    def cloud_started(self, at: float) -> list[SpeechEvent]:
        """The cloud heard speech start: `started` only if the VAD has not said so for this turn."""
        self.begin(at)
        if self._published:
            return []
        return [self._event("started", at)]

    def push(self, pcm: np.ndarray, captured_at: float) -> list[SpeechEvent]:
        """One frame (8 kHz int16) of the caller's audio -> the speech events it makes."""
        out: list[SpeechEvent] = []
        for event in self.endpointer.push(pcm, captured_at):
            out.extend(self._on_vad(event))
        return out

    def too_long(self, now_at: float) -> bool:
        """True once, when the open turn has run past the maximum turn length."""
        if self.utterance_id is None or self._finalizing:
            return False
        if (now_at - self.started_at) * 1000 < self.max_turn_ms:
            return False
        self._finalizing = True
        return True

    @property
    def finalizing(self) -> bool:
        """The turn was cut on length: the cloud was asked to finalize it."""
        return self._finalizing

    def turn_ended(self, at: float) -> list[SpeechEvent]:
        """The cloud ended the turn: `stopped` (unless the VAD already said so); the next speech,
        even more of this VAD segment, opens a new turn."""
        self.begin(at)  # a final with no speech event before it still gets its own utterance
        out = [self._event("stopped", at)] if self._open or not self._published else []
        if self.endpointer.in_speech:  # the caller is still talking: that is the next turn
            self._segment_base = self.endpointer.voiced_ms
        self.utterance_id = None
        self._segment_in_turn = False
        self._open = False
        return out

    def reset(self) -> None:
        """Forget everything (the call went to the local path, or ended)."""
        self.endpointer.reset()
        self.utterance_id = None
        self._segment_in_turn = self._open = False

    def _on_vad(self, event: VadEvent) -> list[SpeechEvent]:
        out: list[SpeechEvent] = []
        if event.kind == "started":
            self._segment_base = 0.0
            self.begin(event.at)
            self._segment_in_turn = True
            if not self._open:  # the cloud may have said `started` for this turn already
                out.append(self._event("started", event.at))
        elif event.kind == "continuing":
            if not self._segment_in_turn:  # speech went on past the cloud's end of turn
                self.begin(event.at)
                self._segment_in_turn = True
                out.append(self._event("started", event.at))
            else:
                out.append(self._event("continuing", event.at))
        elif event.kind == "stopped" and self._segment_in_turn:
            self._voiced_before = self._turn_voiced(event.voiced_ms)
            self._segment_in_turn = False
            if self._open:
                out.append(self._event("stopped", event.at))
        if event.kind == "stopped":
            self._segment_base = 0.0
        return out

    def _event(self, kind: SpeechKind, at: float, voiced_ms: float | None = None) -> SpeechEvent:
        assert self.utterance_id is not None
        self._published = True
        self._open = kind != "stopped"
        voiced = self.voiced_ms if voiced_ms is None else voiced_ms
        return SpeechEvent(call_id=self.call_id, utterance_id=self.utterance_id, kind=kind, at=at,
                           started_at=self.started_at, voiced_ms=round(voiced, 1))
