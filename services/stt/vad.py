"""Endpointing: where an utterance starts and ends in a stream of 8 kHz int16 audio.

Pure and I/O-free. `Endpointer.push(pcm, captured_at)` re-chunks any amount of audio into
20 ms frames, classifies each with webrtcvad and returns decisions stamped with the frames'
own capture times:

- `started`    at the start of the first voiced frame, once `start_frames` voiced frames in a row
               confirm it (a pre-roll of audio before that frame is kept so onsets are not clipped);
- `continuing` every `continuing_ms` of voiced audio, with the running total (for barge-in);
- `paused`     after `early_silence_ms` of silence: the utterance so far, for a speculative decode;
- `resumed`    speech came back after a `paused`: that speculative result is stale;
- `stopped`    when the end policy says so (by default after `end_silence_ms` of silence) or after
               `max_utterance_ms`; stamped at the end of the last voiced frame, not at the moment
               the silence was judged long enough.

The end policy is a function of the silence so far; `check()` asks it again between frames (the
session calls it when an early transcript changes its mind).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import webrtcvad

from ringline.contracts.audio import rms_dbfs

SAMPLE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000  # 160 samples = 160 mu-law bytes
FRAME_S = FRAME_MS / 1000

VadKind = Literal["started", "continuing", "paused", "resumed", "stopped"]
EndPolicy = Callable[[float], "str | None"]
"""silence so far (ms) -> why the utterance ends now, or None."""


@dataclass(frozen=True)
class EndpointerConfig:
    mode: int = 3
    start_frames: int = 3
    end_silence_ms: int = 600
    """Silence that ends an utterance under the default end policy."""
    early_silence_ms: int = 160
    preroll_ms: int = 200
    tail_ms: int = 200
    max_utterance_ms: int = 30_000
    min_voiced_dbfs: float = -60.0
    """Quieter frames are silence even if webrtcvad says voiced: this trims its 60-120 ms
    hangover after a decaying word, so the end of speech is where the word ends."""
    warmup_ms: int = 120
    """webrtcvad calls the first ~100 ms of any noise voiced while it adapts: ignore them."""
    continuing_ms: int = 50
    """A `continuing` event each time this much more voiced audio has been heard."""

    @property
    def early_frames(self) -> int:
        """0 when early decoding is off."""
        return max(0, self.early_silence_ms // FRAME_MS)

    @property
    def preroll_frames(self) -> int:
        return self.preroll_ms // FRAME_MS

    @property
    def tail_frames(self) -> int:
        return self.tail_ms // FRAME_MS

    @property
    def warmup_frames(self) -> int:
        return self.warmup_ms // FRAME_MS

    @property
    def max_frames(self) -> int:
        return max(1, self.max_utterance_ms // FRAME_MS)


@dataclass(frozen=True, eq=False)
class VadEvent:
    kind: VadKind
    at: float
    """started/resumed: start of the first voiced frame; paused/stopped: end of the last one."""
    started_at: float
    """Start of the utterance's first voiced frame."""
    audio: np.ndarray | None = None
    """paused/stopped: int16 PCM from the pre-roll to the last voiced frame plus a short tail."""
    reason: str = ""
    """stopped: what the end policy said ("silence", ...) or "max_length"."""
    voiced_ms: float = 0.0
    """Voiced audio of the utterance so far (from its first voiced frame)."""
    silence_ms: float = 0.0
    """paused/stopped: silence since the last voiced frame when the event was decided."""


@dataclass(frozen=True, eq=False)
class _Frame:
    at: float
    pcm: np.ndarray
    voiced: bool


def webrtc_classifier(mode: int) -> Callable[[np.ndarray], bool]:
    vad = webrtcvad.Vad(mode)
    return lambda frame: vad.is_speech(frame.tobytes(), SAMPLE_RATE)


class Endpointer:
    """Turns 8 kHz int16 audio into utterance start/continue/pause/resume/stop decisions."""

    def __init__(
        self,
        config: EndpointerConfig | None = None,
        classify: Callable[[np.ndarray], bool] | None = None,
        end_policy: EndPolicy | None = None,
    ) -> None:
        self.config = config or EndpointerConfig()
        self._classify = classify or webrtc_classifier(self.config.mode)
        self._end_policy = end_policy or self._silence_policy
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_at = 0.0
        self._seen = 0
        # Idle: recent frames (pre-roll + the voiced run that may become speech).
        self._ring: deque[_Frame] = deque(maxlen=self.config.preroll_frames + self.config.start_frames)
        self._run = 0
        # In speech: every frame since the pre-roll started.
        self._frames: list[_Frame] = []
        self._started_at = 0.0
        self._preroll = 0
        self._last_voiced = -1
        self._silence = 0
        self._paused = False
        self._voiced = 0
        self._ticks = 0

    @property
    def in_speech(self) -> bool:
        return bool(self._frames)

    @property
    def silence_ms(self) -> float:
        """Silence since the last voiced frame of the utterance in progress (0 when idle)."""
        return self._silence * FRAME_MS if self._frames else 0.0

    @property
    def voiced_ms(self) -> float:
        return self._voiced * FRAME_MS if self._frames else 0.0

    def reset(self) -> None:
        """Forget any partial utterance and buffered audio."""
        self._pending = np.zeros(0, dtype=np.int16)
        self._ring.clear()
        self._run = 0
        self._end_utterance()

    def push(self, pcm: np.ndarray, captured_at: float) -> list[VadEvent]:
        """Feed audio captured at `captured_at` (wall-clock seconds of its first sample)."""
        samples = np.array(pcm, dtype=np.int16).reshape(-1)  # a copy: frames are kept
        if samples.size == 0:
            return []
        # Stamp by the caller's clock, not by counting samples: after a gap in the stream (lost
        # frames, a pause in sending) a sample count would fall behind for the rest of the call.
        # A left-over part-frame is taken as captured just before this audio.
        self._pending_at = captured_at - self._pending.size / SAMPLE_RATE
        buffered = np.concatenate([self._pending, samples]) if self._pending.size else samples
        events: list[VadEvent] = []
        whole = buffered.size - buffered.size % FRAME_SAMPLES
        for offset in range(0, whole, FRAME_SAMPLES):
            frame = buffered[offset : offset + FRAME_SAMPLES]
            events.extend(self._step(frame, self._pending_at + offset / SAMPLE_RATE))
        self._pending_at += whole / SAMPLE_RATE
        self._pending = buffered[whole:].copy()
        return events

    def check(self) -> list[VadEvent]:
        """Ask the end policy again, between frames: `[stopped]` if the utterance ends now."""
        if not self._frames or self._silence == 0:
            return []
        reason = self._end_policy(self.silence_ms)
        return [self._stop(reason)] if reason else []

    def _silence_policy(self, silence_ms: float) -> str | None:
        return "silence" if silence_ms >= self.config.end_silence_ms else None

    def _step(self, pcm: np.ndarray, at: float) -> list[VadEvent]:
        voiced = self._classify(pcm)  # always classify: webrtcvad adapts to the line's noise
        if self._seen < self.config.warmup_frames:
            self._seen += 1
            voiced = False
        elif voiced:
            voiced = rms_dbfs(pcm) >= self.config.min_voiced_dbfs
        frame = _Frame(at, pcm, voiced)
        return self._speech_step(frame) if self._frames else self._idle_step(frame)

    def _idle_step(self, frame: _Frame) -> list[VadEvent]:
        self._ring.append(frame)
        self._run = self._run + 1 if frame.voiced else 0
        if self._run < self.config.start_frames:
            return []
        ring = list(self._ring)
        first = len(ring) - self._run
        self._frames = ring[max(0, first - self.config.preroll_frames) :]
        self._preroll = len(self._frames) - self._run
        self._started_at = ring[first].at
        self._last_voiced = len(self._frames) - 1
        self._silence = 0
        self._paused = False
        self._voiced = self._run
        self._ticks = int(self.voiced_ms // max(1, self.config.continuing_ms))
        self._ring.clear()
        self._run = 0
        return [VadEvent("started", self._started_at, self._started_at, voiced_ms=self.voiced_ms)]

    def _speech_step(self, frame: _Frame) -> list[VadEvent]:
        self._frames.append(frame)
        events: list[VadEvent] = []
        if frame.voiced:
            if self._paused:
                self._paused = False
                events.append(VadEvent("resumed", frame.at, self._started_at, voiced_ms=self.voiced_ms))
            self._last_voiced = len(self._frames) - 1
            self._silence = 0
            self._voiced += 1
            ticks = int(self.voiced_ms // max(1, self.config.continuing_ms))
            if ticks > self._ticks:
                self._ticks = ticks
                events.append(
                    VadEvent("continuing", frame.at + FRAME_S, self._started_at, voiced_ms=self.voiced_ms)
                )
        else:
            self._silence += 1
            if self._silence == self.config.early_frames:
                self._paused = True
                events.append(VadEvent(
                    "paused", self._voiced_end, self._started_at, self._audio(),
                    voiced_ms=self.voiced_ms, silence_ms=self.silence_ms,
                ))
        if len(self._frames) - self._preroll >= self.config.max_frames:
            events.append(self._stop("max_length"))
        elif self._silence:
            reason = self._end_policy(self.silence_ms)
            if reason:
                events.append(self._stop(reason))
        return events

    @property
    def _voiced_end(self) -> float:
        return self._frames[self._last_voiced].at + FRAME_S

    def _audio(self) -> np.ndarray:
        end = self._last_voiced + 1 + self.config.tail_frames
        return np.concatenate([f.pcm for f in self._frames[:end]])

    def _stop(self, reason: str) -> VadEvent:
        event = VadEvent(
            "stopped", self._voiced_end, self._started_at, self._audio(), reason,
            voiced_ms=self.voiced_ms, silence_ms=self.silence_ms,
        )
        # The trailing silence (never this utterance's speech) is the next utterance's pre-roll.
        keep = min(self._silence, self.config.preroll_frames)
        if keep:
            self._ring.extend(self._frames[-keep:])
        self._end_utterance()
        return event

    def _end_utterance(self) -> None:
        self._frames = []
        self._last_voiced = -1
        self._silence = 0
        self._paused = False
        self._voiced = 0
        self._ticks = 0
