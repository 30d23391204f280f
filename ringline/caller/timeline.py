"""What the caller's side of the line saw and did, in order, on the wall clock.

The phone line appends to a `Timeline` as things happen; the verdicts (barge-in reaction, false
cut-offs, whether the goodbye was heard) are computed from it after the call, so they do not
depend on when a step happened to look.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from ringline.contracts.messages import parse_mark

MEDIA, MARK, CLEAR = "media", "mark", "clear"


@dataclass
class Timeline:
    received: list[tuple[float, str, str]] = field(default_factory=list)  # (at, MEDIA|MARK|CLEAR, mark name)
    echoed: list[tuple[float, str, bool]] = field(default_factory=list)  # (at, mark, flushed by a clear)
    sent_keys: list[tuple[float, str]] = field(default_factory=list)  # DTMF (at, digit)
    closed_at: float | None = None
    closed_by: str = ""  # "caller" or "agent" (the edge closed the stream)

    # -- recording -------------------------------------------------------------------------

    def media(self, at: float) -> None:
        self.received.append((at, MEDIA, ""))

    def mark(self, at: float, name: str) -> None:
        self.received.append((at, MARK, name))

    def clear(self, at: float) -> None:
        self.received.append((at, CLEAR, ""))

    def echo(self, at: float, name: str, cleared: bool) -> None:
        self.echoed.append((at, name, cleared))

    def close(self, at: float, by: str) -> None:
        if self.closed_at is None:
            self.closed_at, self.closed_by = at, by

    # -- questions ---------------------------------------------------------------------------

    def _from(self, start: float) -> int:
        return bisect_left(self.received, (start, "", ""))

    def media_between(self, start: float, end: float) -> list[float]:
        return [at for at, kind, _ in self.received[self._from(start):] if kind == MEDIA and at < end]

    def clears_between(self, start: float, end: float) -> list[float]:
        return [at for at, kind, _ in self.received[self._from(start):] if kind == CLEAR and at < end]

    def marks_between(self, start: float, end: float) -> list[str]:
        return [name for at, kind, name in self.received[self._from(start):] if kind == MARK and at < end]

    def first_media_after(self, start: float) -> float | None:
        return next((at for at, kind, _ in self.received[self._from(start):] if kind == MEDIA), None)

    def media_turns_after(self, start: float) -> list[tuple[float, str]]:
        """Agent frames received from `start` on, each with the turn of the next mark received after
        it (the edge sends each chunk's frames, then its mark); "" when no mark followed."""
        out: list[tuple[float, str]] = []
        pending: list[float] = []
        for at, kind, name in self.received[self._from(start):]:
            if kind == MEDIA:
                pending.append(at)
            elif kind == MARK:
                turn = parse_mark(name)[0] or name
                out.extend((t, turn) for t in pending)
                pending = []
        out.extend((t, "") for t in pending)
        return out

    def echoed_via_clear(self, start: float, end: float) -> list[str]:
        return [name for at, name, cleared in self.echoed if cleared and start <= at < end]

    def unechoed_at(self, moment: float) -> list[str]:
        """Marks received before `moment` and not echoed (played or flushed) before it."""
        received = [name for at, kind, name in self.received if kind == MARK and at <= moment]
        echoed = {name for at, name, _ in self.echoed if at <= moment}
        return [name for name in received if name not in echoed]
