"""Is the agent speaking, and what has the caller heard? Built from reply chunks and echoed marks.

A turn is speaking from its first chunk until the mark of its final chunk comes back from the
phone side (the caller heard it all), or it is interrupted. TTS puts one mark per chunk
(`make_mark(turn_id, seq)`); the edge echoes it when the audio up to it has played, or with
`cleared=True` when a barge-in cleared the audio before it played. Audio plays in order, so a
heard mark means every chunk up to it was heard.

A turn may be paused (the caller started talking over it; the edge stopped its audio and keeps
it): it still counts as speaking, the echoes of the marks the pause cleared are ignored, and no
timeout runs until it is resumed (the edge plays it on from its last heard mark) or interrupted.

Marks can go missing (a TTS failure, a lost message): a turn whose final mark does not come
back within the time its text takes to say (`chars_per_s`) plus `slack_s`, counted again from
each mark heard, is taken as finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from ringline.contracts.messages import Playback, ReplyChunk, parse_mark

log = logging.getLogger("ringline.brain.speaking")

Ending = Literal["heard", "timeout", "cleared", "interrupted"]
OnFinished = Callable[[str, Ending], None]


@dataclass
class SpokenTurn:
    turn_id: str
    kind: str
    started_at: float
    chunks: dict[int, str] = field(default_factory=dict)
    final_seq: int | None = None
    heard_seq: int = -1
    ended: Ending | None = None
    ended_at: float = 0.0
    paused: bool = False
    first_audio_at: float = 0.0  # the edge wrote its first audio to the phone (0: not yet)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    timer: asyncio.TimerHandle | None = None

    def text_between(self, first: int, last: int) -> str:
        return " ".join(t for seq, t in sorted(self.chunks.items()) if first <= seq <= last and t)


class SpeakingTracker:
    def __init__(self, on_finished: OnFinished | None = None, chars_per_s: float = 14.0,
                 slack_s: float = 5.0, remember: int = 64) -> None:
        self.on_finished = on_finished
        self.chars_per_s = chars_per_s
        self.slack_s = slack_s
        self.remember = remember
        self.turns: dict[str, SpokenTurn] = {}
        self.last_finished_at = 0.0

    # -- what goes out and comes back ---------------------------------------------------------

    def sent(self, chunk: ReplyChunk) -> None:
        turn = self.turns.get(chunk.turn_id)
        if turn is None:
            turn = self.turns[chunk.turn_id] = SpokenTurn(chunk.turn_id, chunk.kind, time.time())
            self._forget_old()
        if turn.ended is not None:
            return
        turn.chunks[chunk.seq] = chunk.text
        turn.kind = chunk.kind
        if chunk.final:
            turn.final_seq = chunk.seq
            if not turn.paused:
                self._arm(turn)

    def on_playback(self, playback: Playback) -> None:
        turn_id, seq = parse_mark(playback.mark)
        turn = self.turns.get(turn_id)
        if turn is None or turn.ended is not None or seq < 0:
            return
        if playback.cleared:
            if turn.paused:
                return  # the pause cleared it: it plays again on resume
            if turn.final_seq is not None and seq >= turn.final_seq:
                self._end(turn, "cleared")
            return
        turn.heard_seq = max(turn.heard_seq, seq)
        if turn.final_seq is not None and turn.heard_seq >= turn.final_seq:
            self._end(turn, "heard")
        elif turn.final_seq is not None and not turn.paused:
            self._arm(turn)

    def first_audio(self, turn_id: str, at: float) -> None:
        turn = self.turns.get(turn_id)
        if turn is not None and not turn.first_audio_at:
            turn.first_audio_at = at

    def pause(self, turn_id: str) -> bool:
        """The edge stopped this turn's audio and keeps it; False if it is not speaking."""
        turn = self.turns.get(turn_id)
        if turn is None or turn.ended is not None or turn.paused:
            return False
        turn.paused = True
        if turn.timer is not None:
            turn.timer.cancel()
            turn.timer = None
        return True

    def resume(self, turn_id: str) -> bool:
        """The edge plays the paused turn on from its last heard mark."""
        turn = self.turns.get(turn_id)
        if turn is None or turn.ended is not None or not turn.paused:
            return False
        turn.paused = False
        if turn.final_seq is not None:
            self._arm(turn)
        return True

    def interrupt(self, turn_id: str) -> str:
        """The brain cut this turn off: it stops speaking now. Returns the text the caller heard."""
        turn = self.turns.get(turn_id)
        if turn is None:
            return ""
        self._end(turn, "interrupted")
        return self.heard_text(turn_id)

    # -- questions ----------------------------------------------------------------------------

    @property
    def speaking(self) -> bool:
        return any(t.ended is None for t in self.turns.values())

    def speaking_turns(self) -> list[SpokenTurn]:
        return [t for t in self.turns.values() if t.ended is None]

    @property
    def paused(self) -> bool:
        return any(t.ended is None and t.paused for t in self.turns.values())

    def heard_text(self, turn_id: str) -> str:
        turn = self.turns.get(turn_id)
        return turn.text_between(0, turn.heard_seq) if turn is not None else ""

    def said_text(self, turn_id: str) -> str:
        """Everything published for the turn, heard or not."""
        turn = self.turns.get(turn_id)
        return turn.text_between(0, max(turn.chunks, default=-1)) if turn is not None else ""

    def heard_seq(self, turn_id: str) -> int:
        turn = self.turns.get(turn_id)
        return turn.heard_seq if turn is not None else -1

    def played(self, turn_id: str) -> bool:
        """Did any of the turn's audio reach the phone (first audio written, or a mark heard)?"""
        turn = self.turns.get(turn_id)
        return turn is not None and (bool(turn.first_audio_at) or turn.heard_seq >= 0)

    def sent_chunks(self, turn_id: str) -> int:
        turn = self.turns.get(turn_id)
        return len(turn.chunks) if turn is not None else 0

    def spoke_since(self, at: float, grace_s: float) -> bool:
        """Was the agent speaking at wall-clock time `at` (or within `grace_s` before it)?"""
        if self.speaking:
            return True
        return bool(self.last_finished_at) and at <= self.last_finished_at + grace_s

    def playback_timeout(self, text: str) -> float:
        """How long `text` may take to be heard: its spoken length plus the slack."""
        return len(text) / self.chars_per_s + self.slack_s

    async def wait_finished(self, turn_id: str, timeout: float) -> Ending | None:
        """Wait until the turn is over (its final mark heard, cleared or timed out)."""
        turn = self.turns.get(turn_id)
        if turn is None:
            return None
        try:
            async with asyncio.timeout(timeout):
                await turn.done.wait()
        except TimeoutError:
            return None
        return turn.ended

    def close(self) -> None:
        for turn in self.turns.values():
            if turn.timer is not None:
                turn.timer.cancel()

    # -- internals ----------------------------------------------------------------------------

    def _arm(self, turn: SpokenTurn) -> None:
        """(Re)start the wait for the final mark: the unheard text's length plus the slack."""
        if turn.timer is not None:
            turn.timer.cancel()
        unheard = turn.text_between(turn.heard_seq + 1, turn.final_seq or 0)
        delay = self.playback_timeout(unheard)
        turn.timer = asyncio.get_running_loop().call_later(delay, self._expire, turn.turn_id)

    def _expire(self, turn_id: str) -> None:
        turn = self.turns.get(turn_id)
        if turn is not None and turn.ended is None:
            log.info("turn %s: final mark not echoed in time; taking it as finished", turn_id)
            self._end(turn, "timeout")

    def _end(self, turn: SpokenTurn, how: Ending) -> None:
        if turn.ended is not None:
            return
        turn.ended, turn.ended_at = how, time.time()
        if turn.timer is not None:
            turn.timer.cancel()
            turn.timer = None
        self.last_finished_at = turn.ended_at
        turn.done.set()
        if self.on_finished is not None:
            self.on_finished(turn.turn_id, how)

    def _forget_old(self) -> None:
        while len(self.turns) > self.remember:
            oldest = next(iter(self.turns))
            if self.turns[oldest].ended is None:
                break
            del self.turns[oldest]
