"""What the caller's ear hears: Twilio's outbound playback, emulated on a clock.

Media frames queue up behind each other and play in real time; a mark is echoed when the audio
queued before it has finished playing; `clear` drops what has not played yet and echoes the
pending marks at once. Times are seconds on any monotonic-enough clock the caller picks
(wall-clock `time.time()` here, to line up with the call record).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ringline.contracts.audio import mulaw_decode

SAMPLE_RATE = 8000


@dataclass
class _Piece:
    start: float
    audio: bytearray

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / SAMPLE_RATE


class PlaybackEmulator:
    def __init__(self) -> None:
        self.clock = 0.0  # when everything queued so far will have played
        self.pieces: list[_Piece] = []
        self._marks: deque[tuple[float, str]] = deque()
        self.cleared_bytes = 0

    def on_media(self, now: float, audio: bytes) -> float:
        """Queue received audio; returns when it starts playing."""
        start = max(now, self.clock)
        if self.pieces and abs(self.pieces[-1].end - start) < 1e-9:
            self.pieces[-1].audio += audio  # contiguous: keep one piece
        else:
            self.pieces.append(_Piece(start, bytearray(audio)))
        self.clock = start + len(audio) / SAMPLE_RATE
        return start

    def on_mark(self, now: float, name: str) -> None:
        self._marks.append((max(now, self.clock), name))

    def on_clear(self, now: float) -> list[str]:
        """Drop unplayed audio; returns the pending marks, to be echoed right away."""
        kept: list[_Piece] = []
        for piece in self.pieces:
            if piece.start >= now:
                self.cleared_bytes += len(piece.audio)
                continue
            if piece.end > now:
                played = int(round((now - piece.start) * SAMPLE_RATE))
                self.cleared_bytes += len(piece.audio) - played
                del piece.audio[played:]
            kept.append(piece)
        self.pieces = kept
        self.clock = min(self.clock, now)
        names = [name for _, name in self._marks]
        self._marks.clear()
        return names

    def due_marks(self, now: float) -> list[str]:
        """Marks whose audio has finished playing by `now`, in order."""
        names = []
        while self._marks and self._marks[0][0] <= now:
            names.append(self._marks.popleft()[1])
        return names

    @property
    def pending_marks(self) -> int:
        return len(self._marks)

    def idle(self, now: float) -> bool:
        """Nothing left to play and no mark waiting to be echoed."""
        return self.clock <= now and not self._marks

    def stalls_ms(self, within_s: float = 1.0) -> list[float]:
        """Hiccups the caller heard: silences shorter than `within_s` between two stretches of agent
        audio, because the next audio arrived after what came before had finished playing (a
        longer silence is the caller's own turn). Audio that arrives early never stalls."""
        return [round((b.start - a.end) * 1000, 1) for a, b in zip(self.pieces, self.pieces[1:], strict=False)
                if 0 < b.start - a.end < within_s]

    def played_seconds(self) -> float:
        return sum(len(p.audio) for p in self.pieces) / SAMPLE_RATE

    def timeline(self, origin: float, end: float | None = None) -> np.ndarray:
        """The agent track as int16 PCM from `origin`, silence where nothing played."""
        last = max([p.end for p in self.pieces] + [end or origin])
        out = np.zeros(max(0, int(round((last - origin) * SAMPLE_RATE))), dtype=np.int16)
        for piece in self.pieces:
            offset = max(0, int(round((piece.start - origin) * SAMPLE_RATE)))
            pcm = mulaw_decode(bytes(piece.audio))[: max(0, len(out) - offset)]
            out[offset:offset + len(pcm)] = pcm
        return out
