"""What a streaming recognizer reports, normalized: capabilities, words, events, and the pure
assembly of a provider's result messages into turns (no I/O)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

from .recognizer import Capabilities


@dataclass(frozen=True)
class StreamCapabilities(Capabilities):
    word_timings: bool = False
    endpointing: bool = False
    """The provider decides the end of a turn itself (no local endpointer needed)."""


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    confidence: float = 0.0


@dataclass(frozen=True)
class SttEvent:
    """One normalized event. Times: `*_s` are audio seconds since the stream's first byte,
    `*_at` wall-clock seconds (from the frames' capture times)."""

    kind: Literal["speech_started", "interim", "final", "utterance_end"]
    text: str = ""
    """interim/final: everything the caller said in this turn so far."""
    segment: str = ""
    """This result's own text."""
    end_of_turn: bool = False
    end_reason: str = ""  # "endpointing" | "utterance_end" | "finalize"
    start_s: float = 0.0
    end_s: float = 0.0
    started_at: float = 0.0
    ended_at: float = 0.0
    received_at: float = 0.0
    words: tuple[Word, ...] = ()
    confidence: float = 0.0


class TurnAssembler:
    """Pure: Deepgram's messages -> `SttEvent`s. Finals of one turn accumulate until
    `speech_final` (endpointing), `from_finalize` or `UtteranceEnd` (Deepgram's backstop for
    noisy lines) ends the turn. Wall-clock times come from the capture times of the audio sent."""

    def __init__(self) -> None:
        self._clock: deque[tuple[float, float]] = deque(maxlen=3000)  # (audio s, wall s)
        self._turn: list[str] = []
        self._words: list[Word] = []

    def sent(self, offset_s: float, wall: float) -> None:
        """Audio starting at `offset_s` in the stream was captured at `wall`."""
        self._clock.append((offset_s, wall))

    def wall_at(self, audio_s: float) -> float:
        for offset, wall in reversed(self._clock):
            if offset <= audio_s:
                return wall + (audio_s - offset)
        return self._clock[0][1] + audio_s - self._clock[0][0] if self._clock else time.time()

    def feed(self, message: Any, now: float) -> list[SttEvent]:
        kind = getattr(message, "type", None)
        if kind == "Results":
            return self._results(message, now)
        if kind == "SpeechStarted":
            at = float(message.timestamp)
            return [SttEvent("speech_started", start_s=at, started_at=self.wall_at(at), received_at=now)]
        if kind == "UtteranceEnd":
            end = float(message.last_word_end)
            if self._turn:
                return [self._final(True, "utterance_end", end, now, "")]
            return [SttEvent("utterance_end", end_s=end, ended_at=self.wall_at(end), received_at=now)]
        return []

    def _results(self, message: Any, now: float) -> list[SttEvent]:
        alt = message.channel.alternatives[0] if message.channel.alternatives else None
        segment = alt.transcript.strip() if alt is not None else ""
        words = tuple(Word(w.punctuated_word or w.word, float(w.start), float(w.end), float(w.confidence))
                      for w in (alt.words if alt is not None else []))
        end = float(message.start) + float(message.duration)
        if not message.is_final:
            if not segment:
                return []
            first = (self._words or words or [Word("", float(message.start), end)])[0].start_s
            return [SttEvent("interim", " ".join([*self._turn, segment]), segment, start_s=first, end_s=end,
                             started_at=self.wall_at(first), received_at=now, words=words,
                             confidence=float(alt.confidence) if alt is not None else 0.0)]
        if segment:
            self._turn.append(segment)
            self._words.extend(words)
        if message.speech_final or message.from_finalize:
            reason = "endpointing" if message.speech_final else "finalize"
            return [self._final(True, reason, end, now, segment)] if self._turn else []
        return [self._final(False, "", end, now, segment)] if segment else []

    def _final(self, end_of_turn: bool, reason: str, end: float, now: float, segment: str) -> SttEvent:
        words = tuple(self._words)
        start, last = (words[0].start_s, words[-1].end_s) if words else (end, end)
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        event = SttEvent("final", " ".join(self._turn), segment, end_of_turn, reason, start, last,
                         self.wall_at(start), self.wall_at(last), now, words, confidence)
        if end_of_turn:
            self._turn, self._words = [], []
        return event
