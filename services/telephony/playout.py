"""Agent audio on its way to the phone: frames and marks through the outbox, barge-in clears,
and which echoed marks the caller really heard.

Twilio echoes a mark when the audio queued before it has played, and also, at once, every mark
still pending when it receives `clear`. Both echoes look the same on the wire, so the edge keeps
the state of every mark it queued: when a `clear` is written, the marks already written and not
yet echoed are the ones that will come back unheard, and their echoes become
`Playback(cleared=True)`. Marks of an interrupted turn still queued in the edge are dropped with
its audio and never written, so they never come back: a `Playback` always stands for an echo
from the phone side. (A mark Twilio played just before the `clear` reached it, with its echo
still in flight, is counted as cleared: the edge cannot tell the two apart.)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ringline.contracts.messages import FRAME_BYTES, AgentAudio, TurnTiming, parse_mark

from . import twilio_protocol as tp
from .outbox import Outbox

log = logging.getLogger("ringline.telephony.playout")

_QUEUED, _WRITTEN, _UNHEARD = "queued", "written", "unheard"


@dataclass(frozen=True)
class ClearSent:
    """A `clear` written to the socket because turn `turn_id` was interrupted ("" = every turn)."""

    turn_id: str
    at: float  # wall clock, right after the write
    unheard_marks: tuple[str, ...]  # written, not echoed yet: Twilio echoes them now, unplayed
    dropped: int  # messages of the turn that were still queued in the edge and were never sent


class Playout:
    def __init__(
        self,
        outbox: Outbox,
        stream_sid: str,
        on_first_audio: Callable[[str, TurnTiming], None],
        on_clear: Callable[[ClearSent], None],
    ) -> None:
        self.outbox = outbox
        self.stream_sid = stream_sid
        self._on_first_audio = on_first_audio
        self._on_clear = on_clear
        self._carry: dict[str, bytes] = {}
        self._started: set[str] = set()
        self._interrupted: set[str] = set()
        self._marks: dict[str, str] = {}  # mark name -> _QUEUED / _WRITTEN / _UNHEARD, in order

    # -- agent audio -----------------------------------------------------------------------

    def audio(self, msg: AgentAudio) -> None:
        """Queue a piece of agent audio as 20 ms frames (and its mark); audio of interrupted turns is dropped."""
        turn = msg.turn_id
        if turn in self._interrupted:
            return
        data = self._carry.pop(turn, b"") + msg.payload
        flush = msg.mark is not None or msg.final
        cut = len(data) if flush else len(data) - len(data) % FRAME_BYTES
        if cut < len(data):
            self._carry[turn] = data[cut:]
        for i, frame in enumerate(tp.split_frames(data[:cut])):
            on_sent = None
            if i == 0 and turn not in self._started:
                self._started.add(turn)
                on_sent = self._first_audio_callback(turn, msg.timing)
            self.outbox.audio(tp.media_message(self.stream_sid, frame), turn, on_sent)
        if msg.mark:
            self._marks[msg.mark] = _QUEUED
            self.outbox.audio(tp.mark_message(self.stream_sid, msg.mark), turn, self._written(msg.mark))

    def _first_audio_callback(self, turn_id: str, timing: TurnTiming) -> Callable[[], None]:
        return lambda: self._on_first_audio(turn_id, timing)

    def _written(self, name: str) -> Callable[[], None]:
        def written() -> None:
            if self._marks.get(name) == _QUEUED:  # not echoed in the meantime
                self._marks[name] = _WRITTEN

        return written

    # -- barge-in --------------------------------------------------------------------------

    def interrupt(self, turn_id: str) -> int:
        """Drop what is still queued of `turn_id` ("" = every turn) and its later audio, and queue a
        `clear` ahead of everything else; returns how many queued messages were dropped."""
        targets = [turn_id] if turn_id else list(self._started | set(self._carry))
        self._interrupted.update(targets)
        for turn in targets:
            self._carry.pop(turn, None)
        dropped = self.outbox.drop_turn(turn_id or None)
        targets_set = set(targets)
        for name, state in list(self._marks.items()):
            if state == _QUEUED and (not turn_id or parse_mark(name)[0] in targets_set):
                del self._marks[name]  # never written: it will never be echoed
        self.outbox.control(tp.clear_message(self.stream_sid), self._clear_written(turn_id, dropped))
        return dropped

    def _clear_written(self, turn_id: str, dropped: int) -> Callable[[], None]:
        def written() -> None:
            at = time.time()
            unheard = tuple(name for name, state in self._marks.items() if state == _WRITTEN)
            for name in unheard:
                self._marks[name] = _UNHEARD
            self._on_clear(ClearSent(turn_id=turn_id, at=at, unheard_marks=unheard, dropped=dropped))

        return written

    # -- echoes ----------------------------------------------------------------------------

    def echoed(self, name: str) -> bool:
        """A mark came back from the phone side; True when it was cleared (not heard)."""
        return self._marks.pop(name, None) == _UNHEARD

    @property
    def pending_marks(self) -> int:
        """Marks queued or written and not echoed yet."""
        return len(self._marks)
