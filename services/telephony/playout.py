"""Agent audio on its way to the phone: frames and marks through the outbox, barge-in clears,
pauses that can be taken back, and which echoed marks the caller really heard.

Twilio echoes a mark when the audio queued before it has played, and also, at once, every mark
still pending when it receives `clear`. Both echoes look the same on the wire, so the edge keeps
the state of every mark it queued: when a `clear` is written, the marks already written and not
yet echoed are the ones that will come back unheard, and their echoes become
`Playback(cleared=True)`. Marks of an interrupted turn still queued in the edge are dropped with
its audio and never written, so they never come back: a `Playback` always stands for an echo
from the phone side. (A mark Twilio played just before the `clear` reached it, with its echo
still in flight, is counted as cleared: the edge cannot tell the two apart.)

Pause and resume: every turn keeps a replay log, the messages queued since the last of its
marks the caller heard. `pause` clears the phone as an interrupt does but keeps the turn: its
messages still queued in the edge are taken back (the log has them), its later audio is logged
and not sent, and the echoes of its marks that the `clear` flushes are no news (`echoed` says
"kept": no `Playback`; the turn plays them again). `resume` sends the log again, from where the
pause cut in less `rewind_s` (the phone plays in real time, so the edge estimates how much of the
chunk after the last heard mark was played; a pause shorter than `rewind_after_s`, the usual one
for a backchannel, picks up exactly where it cut in: the caller missed nothing), with the marks
renamed `make_mark(turn, seq, replay=n)` for the n-th resume, so their echoes are never taken
for those of the cleared copy; then the turn goes on live. A turn's log goes when it is over:
its final mark heard (or cleared, the turn not paused), or the turn interrupted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ringline.contracts.messages import FRAME_BYTES, FRAME_MS, AgentAudio, TurnTiming, make_mark, parse_mark

from . import twilio_protocol as tp
from .outbox import Outbox

log = logging.getLogger("ringline.telephony.playout")

_QUEUED, _WRITTEN, _UNHEARD = "queued", "written", "unheard"
_HELD = "held"  # written, then its turn was paused: the next `clear` flushes it
_KEPT = "kept"  # flushed by a `clear` while its turn was paused: it plays again on resume

Echo = Literal["heard", "cleared", "kept"]  # kept: cleared by a pause; no `Playback` for it


@dataclass(frozen=True)
class ClearSent:
    """A `clear` written to the socket because turn `turn_id` was interrupted or paused ("" = every turn)."""

    turn_id: str
    at: float  # wall clock, right after the write
    unheard_marks: tuple[str, ...]  # written, not echoed yet: Twilio echoes them now, unplayed
    dropped: int  # messages of the turn still queued in the edge: never sent, or (a pause) kept to replay
    pause: bool = False


@dataclass(slots=True)
class _Logged:
    """One message of a turn's replay log: a `media` message as written, or a mark."""

    media: str = ""
    mark: str = ""  # the name TTS gave it; a replay renames it
    final: bool = False  # the turn's last mark
    on_sent: Callable[[], None] | None = None  # the turn's first-audio report (runs once)
    played_by: float = 0.0  # media: when the phone should have played it (0: not written)
    frames: int = 1  # media: how many 20 ms frames the message carries


@dataclass(slots=True)
class _ReplayLog:
    """A turn's messages since the last of its marks the caller heard."""

    entries: list[_Logged] = field(default_factory=list)
    replays: int = 0  # how many times the turn was resumed: the n of `turn~n:seq`

    def heard(self, seq: int) -> bool:
        """Mark `seq` was heard: forget it and what came before; True when it was the final mark."""
        for i, entry in enumerate(self.entries):
            if entry.mark and parse_mark(entry.mark)[1] == seq:
                del self.entries[: i + 1]
                return entry.final
        return False

    def ends_at(self, seq: int) -> bool:
        """Is mark `seq` the turn's final mark?"""
        return any(entry.final and parse_mark(entry.mark)[1] == seq for entry in self.entries if entry.mark)


class Playout:
    def __init__(
        self,
        outbox: Outbox,
        stream_sid: str,
        on_first_audio: Callable[[str, TurnTiming], None],
        on_clear: Callable[[ClearSent], None],
        rewind_s: float = 0.4,
        clock: Callable[[], float] = time.time,
        rewind_after_s: float = 0.0,
        frames_per_message: int = 1,
    ) -> None:
        self.outbox = outbox
        self.frames_per_message = max(1, frames_per_message)  # a `media` message carries up to this many frames
        self.rewind_s = rewind_s  # a resume plays this much again before where the pause cut in ...
        self.rewind_after_s = rewind_after_s  # ... when the pause lasted at least this long
        self._clock = clock
        self._phone_free_at = 0.0  # when the phone has played everything written (an estimate)
        self._paused_at: dict[str, float] = {}
        self.stream_sid = stream_sid
        self._on_first_audio = on_first_audio
        self._on_clear = on_clear
        self._carry: dict[str, bytes] = {}
        self._started: set[str] = set()
        self._interrupted: set[str] = set()
        self._paused: set[str] = set()
        self._logs: dict[str, _ReplayLog] = {}  # turns playing (or paused), not finished
        self._marks: dict[str, str] = {}  # mark name -> _QUEUED / _WRITTEN / ..., in order

    # -- agent audio -----------------------------------------------------------------------

    def audio(self, msg: AgentAudio) -> None:
        """Queue a piece of agent audio as `media` messages of up to `frames_per_message` 20 ms
        frames (and its mark); audio of interrupted turns is dropped, audio of paused turns kept
        for the resume."""
        turn = msg.turn_id
        if turn in self._interrupted:
            return
        data = self._carry.pop(turn, b"") + msg.payload
        flush = msg.mark is not None or msg.final
        cut = len(data) if flush else len(data) - len(data) % FRAME_BYTES
        if cut < len(data):
            self._carry[turn] = data[cut:]
        for i, piece in enumerate(tp.media_pieces(data[:cut], self.frames_per_message)):
            on_sent = None
            if i == 0 and turn not in self._started:
                self._started.add(turn)
                on_sent = self._first_audio_callback(turn, msg.timing)
            self._queue(turn, _Logged(media=tp.media_message(self.stream_sid, piece), on_sent=on_sent,
                                      frames=len(piece) // FRAME_BYTES))
        if msg.mark:
            self._queue(turn, _Logged(mark=msg.mark, final=msg.final))

    def _queue(self, turn_id: str, entry: _Logged) -> None:
        """Log a message of the turn and send it, unless the turn is paused."""
        replay = self._logs.setdefault(turn_id, _ReplayLog())
        replay.entries.append(entry)
        if turn_id not in self._paused:
            self._send(turn_id, entry, replay.replays)

    def _send(self, turn_id: str, entry: _Logged, replay: int) -> None:
        if entry.media:
            self.outbox.audio(entry.media, turn_id, self._frame_written(entry))
            return
        seq = parse_mark(entry.mark)[1]
        name = make_mark(turn_id, seq, replay) if replay and seq >= 0 else entry.mark
        self._marks[name] = _QUEUED
        self.outbox.audio(tp.mark_message(self.stream_sid, name), turn_id, self._written(name))

    def _frame_written(self, entry: _Logged) -> Callable[[], None]:
        """The phone plays frames in real time, in the order written: estimate when this message has played."""
        def written() -> None:
            self._phone_free_at = max(self._phone_free_at, self._clock()) + entry.frames * FRAME_MS / 1000
            entry.played_by = self._phone_free_at
            if entry.on_sent is not None:
                entry.on_sent()

        return written

    def _first_audio_callback(self, turn_id: str, timing: TurnTiming) -> Callable[[], None]:
        pending = [timing]  # a replay may write the first frame again: report it once

        def sent() -> None:
            if pending:
                self._on_first_audio(turn_id, pending.pop())

        return sent

    def _written(self, name: str) -> Callable[[], None]:
        def written() -> None:
            if self._marks.get(name) == _QUEUED:  # not echoed in the meantime
                self._marks[name] = _WRITTEN

        return written

    # -- barge-in --------------------------------------------------------------------------

    def interrupt(self, turn_id: str) -> int:
        """Drop what is still queued of `turn_id` ("" = every turn) and its later audio (a paused
        turn's kept audio too), and queue a `clear` ahead of everything else; returns how many
        queued messages were dropped."""
        targets = [turn_id] if turn_id else list(self._started | set(self._carry) | set(self._logs))
        self._interrupted.update(targets)
        for turn in targets:
            self._carry.pop(turn, None)
            self._logs.pop(turn, None)
            self._paused.discard(turn)
        dropped = self.outbox.drop_turn(turn_id or None)
        targets_set = set(targets)
        for name, state in list(self._marks.items()):
            if state == _QUEUED and (not turn_id or parse_mark(name)[0] in targets_set):
                del self._marks[name]  # never written: it will never be echoed
        self.outbox.control(tp.clear_message(self.stream_sid), self._clear_written(turn_id, dropped))
        return dropped

    def pause(self, turn_id: str) -> bool:
        """Stop the caller hearing `turn_id` ("" = every playing turn) but keep its audio: take its
        queued messages back, queue a `clear` ahead of everything else and hold its later audio.
        A turn with no audio here yet is held from its first frame, with no `clear` (nothing of it
        is at the phone): the brain pauses an answer the caller talked into before it played.
        False (and nothing done) for a turn finished, interrupted or already paused."""
        if turn_id and turn_id not in self._started and turn_id not in self._interrupted:
            if turn_id in self._paused:
                return False
            self._paused.add(turn_id)
            self._paused_at[turn_id] = 0.0  # nothing of it played
            self._logs.setdefault(turn_id, _ReplayLog())
            return True
        candidates = [turn_id] if turn_id else list(self._logs)
        targets = {turn for turn in candidates if turn in self._logs and turn not in self._paused}
        if not targets:
            return False
        self._paused.update(targets)
        self._paused_at.update(dict.fromkeys(targets, self._clock()))
        taken = sum(self.outbox.drop_turn(turn) for turn in targets)  # the logs have them
        for name, state in list(self._marks.items()):
            if parse_mark(name)[0] not in targets:
                continue
            if state == _QUEUED:
                del self._marks[name]  # taken back: this name is never written
            elif state == _WRITTEN:
                self._marks[name] = _HELD
        self.outbox.control(tp.clear_message(self.stream_sid), self._clear_written(turn_id, taken, pause=True))
        return True

    def resume(self, turn_id: str) -> int:
        """Play paused `turn_id` ("" = every paused turn) on: queue its log again (the audio after
        its last heard mark, then what came while paused) with its marks renamed for this replay,
        and send its later audio live. Returns how many messages were queued again."""
        targets = [turn for turn in ([turn_id] if turn_id else list(self._paused)) if turn in self._paused]
        requeued = 0
        for turn in targets:
            self._paused.discard(turn)
            replay = self._logs[turn]
            replay.replays += 1
            paused_at = self._paused_at.pop(turn, 0.0)
            rewind = self.rewind_s if self._clock() - paused_at >= self.rewind_after_s else 0.0
            entries = replay.entries[self._played(replay, paused_at, rewind):]
            for entry in entries:
                self._send(turn, entry, replay.replays)
            requeued += len(entries)
        return requeued

    @staticmethod
    def _played(replay: _ReplayLog, paused_at: float, rewind_s: float) -> int:
        """How many messages at the start of the log the caller had surely heard when the pause cut
        in (all but the last `rewind_s`): the resume picks up there, not at the chunk's start (to
        a message's length: a resume may replay up to `frames_per_message` frames more)."""
        cutoff = paused_at - rewind_s
        played = 0
        for entry in replay.entries:
            if not entry.media or not entry.played_by or entry.played_by > cutoff:
                break
            played += 1
        return played

    def _clear_written(self, turn_id: str, dropped: int, pause: bool = False) -> Callable[[], None]:
        def written() -> None:
            at = time.time()
            flushed = tuple(name for name, state in self._marks.items() if state in (_WRITTEN, _HELD))
            for name in flushed:
                self._marks[name] = _KEPT if self._marks[name] == _HELD else _UNHEARD
            self._phone_free_at = 0.0  # the phone's buffer is empty
            self._on_clear(ClearSent(turn_id=turn_id, at=at, unheard_marks=flushed, dropped=dropped, pause=pause))

        return written

    # -- echoes ----------------------------------------------------------------------------

    def echoed(self, name: str) -> Echo:
        """A mark came back from the phone side: heard, cleared, or kept (cleared by a pause)."""
        state = self._marks.pop(name, None)
        if state == _KEPT:
            return "kept"
        turn_id, seq = parse_mark(name)
        replay = self._logs.get(turn_id)
        # the final mark, heard or cleared with the turn not paused: the turn is over
        if replay is not None and (replay.ends_at(seq) if state == _UNHEARD else replay.heard(seq)):
            del self._logs[turn_id]
            self._paused.discard(turn_id)
        return "cleared" if state == _UNHEARD else "heard"

    @property
    def pending_marks(self) -> int:
        """Marks queued or written and not echoed yet."""
        return len(self._marks)
