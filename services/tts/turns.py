"""The order in which reply chunks are spoken: turns in arrival order, a turn's chunks by `seq`.

Chunks may arrive out of order (or, on core NATS, not at all), so each turn buffers chunks
until the next `seq` is there. Two timeouts keep one bad turn from blocking the call:
a missing chunk is skipped after `gap_wait_s` once a later one is waiting, and a turn that
has gone quiet for `stall_s` without its final chunk is abandoned when a newer turn waits.
Turns that finished or were dropped are remembered so that late chunks of them are ignored;
`on_drop` hears of every dropped turn (interrupted, stopped or abandoned), so that whatever it
holds (a Cartesia context) is released.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry.context import Context

from ringline.contracts.messages import ReplyChunk

if TYPE_CHECKING:
    from .provider import TurnSpeech

log = logging.getLogger("ringline.tts.turns")

_REMEMBERED_TURNS = 256


@dataclass(frozen=True)
class QueuedChunk:
    chunk: ReplyChunk
    context: Context
    """Trace context of the message that carried the chunk."""
    received_at: float


class Turn:
    """One agent turn being spoken, with the chunks not spoken yet and its audio bookkeeping."""

    def __init__(self, turn_id: str, now: float) -> None:
        self.turn_id = turn_id
        self.pending: dict[int, QueuedChunk] = {}
        self.next_seq = 0
        self.last_activity = now
        self.gap_since: float | None = None
        self.dropped = False
        # Filled in while speaking:
        self.audio_seq = 0
        self.audio_bytes = 0
        self.chunks_spoken = 0
        self.tts_started_at = 0.0
        self.first_audio_at = 0.0
        self.speech: TurnSpeech | None = None
        """Who spoke which chunk (the synthesizer's per-turn view), from the first chunk on."""


class TurnQueue:
    def __init__(
        self, gap_wait_s: float = 1.0, stall_s: float = 10.0, clock: Callable[[], float] = time.monotonic,
        on_drop: Callable[[Turn], None] | None = None,
    ) -> None:
        self.gap_wait_s = gap_wait_s
        self.stall_s = stall_s
        self._clock = clock
        self._on_drop = on_drop
        self._turns: OrderedDict[str, Turn] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._changed = asyncio.Event()
        self.stopped = False

    def add(self, chunk: ReplyChunk, context: Context) -> bool:
        """Queue a chunk; False when it is stale (its turn is over) or a duplicate."""
        if self.stopped or chunk.turn_id in self._closed:
            return False
        now = self._clock()
        turn = self._turns.get(chunk.turn_id)
        if turn is None:
            turn = self._turns[chunk.turn_id] = Turn(chunk.turn_id, now)
        if chunk.seq < turn.next_seq or chunk.seq in turn.pending:
            return False
        turn.pending[chunk.seq] = QueuedChunk(chunk, context, received_at=time.time())
        turn.last_activity = now
        self._changed.set()
        return True

    def get(self, turn_id: str) -> Turn | None:
        return self._turns.get(turn_id)

    def turn_ids(self) -> list[str]:
        return list(self._turns)

    def drop(self, turn_id: str) -> Turn | None:
        """Forget a turn and ignore anything of it that still arrives (known yet or not)."""
        self._remember(turn_id)
        turn = self._turns.pop(turn_id, None)
        if turn is not None:
            turn.dropped = True
            turn.pending.clear()
            self._changed.set()
            if self._on_drop is not None:
                self._on_drop(turn)
        return turn

    def finish(self, turn: Turn) -> None:
        """The turn's final chunk has been spoken."""
        self._remember(turn.turn_id)
        if self._turns.get(turn.turn_id) is turn:
            del self._turns[turn.turn_id]
        self._changed.set()

    def touch(self, turn: Turn) -> None:
        """A chunk of the turn was just spoken: its stall clock starts again."""
        turn.last_activity = self._clock()

    def stop(self) -> None:
        for turn_id in list(self._turns):
            self.drop(turn_id)
        self.stopped = True

    async def next(self) -> tuple[Turn, QueuedChunk]:
        """Wait for the next chunk to speak."""
        while True:
            self._changed.clear()
            picked, wait_s = self._pick()
            if picked is not None:
                return picked
            try:
                await asyncio.wait_for(self._changed.wait(), wait_s)
            except TimeoutError:
                pass

    def _pick(self) -> tuple[tuple[Turn, QueuedChunk] | None, float | None]:
        """The chunk to speak now, or how long to wait before looking again (None: until told)."""
        while self._turns and not self.stopped:
            head = next(iter(self._turns.values()))
            now = self._clock()
            if (queued := head.pending.pop(head.next_seq, None)) is not None:
                head.next_seq += 1
                head.gap_since = None
                return (head, queued), None
            if head.pending:  # a later chunk is here, the next one is not
                head.gap_since = head.gap_since if head.gap_since is not None else now
                left = head.gap_since + self.gap_wait_s - now
                if left > 0:
                    return None, left
                skipped_to = min(head.pending)
                log.warning("turn %s: chunks %d-%d never came; going on",
                            head.turn_id, head.next_seq, skipped_to - 1)
                head.next_seq = skipped_to
                continue
            if len(self._turns) == 1:
                return None, None  # waiting for the brain's next chunk
            left = head.last_activity + self.stall_s - now
            if left > 0:
                return None, left
            log.warning("turn %s: no final chunk after %.1f s and a newer turn waits; abandoned",
                        head.turn_id, self.stall_s)
            self.drop(head.turn_id)
        return None, None

    def _remember(self, turn_id: str) -> None:
        self._closed[turn_id] = None
        self._closed.move_to_end(turn_id)
        while len(self._closed) > _REMEMBERED_TURNS:
            self._closed.popitem(last=False)
