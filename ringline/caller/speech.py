"""What the caller says: text through the local Piper voice, or WAV files, as 8 kHz mu-law."""

from __future__ import annotations

import logging
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample, rms_dbfs

SAMPLE_RATE = 8000
FRAME_BYTES = 160
LEAD_SILENCE_S = 0.3
SILENCE = b"\xff"

log = logging.getLogger("ringline.caller.speech")


@dataclass(frozen=True)
class Utterance:
    """One thing the caller says: whole 20 ms frames of 8 kHz mu-law."""

    label: str
    audio: bytes = field(repr=False)
    text: str = ""  # what is said, when known (--say); empty for a WAV file
    pauses: tuple[tuple[int, int], ...] = ()  # silent gaps inside it, as [start, end) frame indexes

    @property
    def frames(self) -> int:
        return len(self.audio) // FRAME_BYTES

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def _speech_frames(self) -> list[int]:
        """Indexes of the frames with speech in them (within 35 dB of the loudest, above -50 dBFS)."""
        pcm = mulaw_decode(self.audio)
        levels = [rms_dbfs(pcm[i:i + FRAME_BYTES]) for i in range(0, len(pcm), FRAME_BYTES)]
        loud = max(levels, default=float("-inf"))
        if loud == float("-inf"):
            return []
        threshold = max(loud - 35.0, -50.0)
        return [i for i, level in enumerate(levels) if level >= threshold]

    @property
    def voiced_frames(self) -> int:
        """Frames up to and including the last one with speech in it (trailing silence excluded)."""
        speech = self._speech_frames()
        return speech[-1] + 1 if speech else 0

    @property
    def onset_frame(self) -> int:
        """The first frame with speech in it (leading silence excluded)."""
        speech = self._speech_frames()
        return speech[0] if speech else 0

    @property
    def voiced_ms(self) -> float:
        """From the first to the last frame with speech, inner pauses included."""
        return (self.voiced_frames - self.onset_frame) * 1000 * FRAME_BYTES / SAMPLE_RATE


def from_pcm(pcm: np.ndarray, rate: int, label: str, text: str = "",
             lead_silence_s: float = LEAD_SILENCE_S) -> Utterance:
    """int16 PCM at any rate -> an utterance (leading silence added, last frame padded)."""
    pcm8k = np.asarray(resample(np.asarray(pcm, dtype=np.int16), rate, SAMPLE_RATE))
    pcm8k = np.clip(pcm8k, -32768, 32767).astype(np.int16)
    audio = SILENCE * int(lead_silence_s * SAMPLE_RATE) + mulaw_encode(pcm8k)
    if len(audio) % FRAME_BYTES:
        audio += SILENCE * (FRAME_BYTES - len(audio) % FRAME_BYTES)
    return Utterance(label=label, audio=audio, text=text)


def read_wav(path: str | Path) -> Utterance:
    """A 16-bit WAV file (any rate, mono or stereo) -> an utterance."""
    path = Path(path)
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: {8 * wav.getsampwidth()}-bit samples; only 16-bit PCM WAV is supported")
        channels, rate = wav.getnchannels(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    if channels > 1:
        pcm = pcm.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return from_pcm(pcm, rate, label=path.name)


def write_wav(path: str | Path, pcm: np.ndarray, rate: int = SAMPLE_RATE) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
    return path


class Synth(Protocol):
    @property
    def sample_rate(self) -> int: ...

    def synthesize(self, text: str) -> Iterator[np.ndarray]: ...


def load_synth(threads: int = 1) -> Synth:
    """The local Piper voice, the same one the TTS service speaks with, without sampling noise:
    Piper otherwise varies every rendering, and Whisper then hears "France" one run and
    "friends" the next."""
    from ringline.services.tts.piper_voice import PiperSynth

    return PiperSynth(model_path=None, threads=threads, deterministic=True)


def compose(pieces: Sequence[Utterance | int], label: str = "", text: str = "",
            lead_silence_s: float = LEAD_SILENCE_S, tail_silence_s: float = 0.2) -> Utterance:
    """One utterance from several, each cut to its speech, with silent gaps of exactly the given
    milliseconds (the ints) between them: `compose([u1, 600, u2])` is u1, 600 ms of silence, u2."""
    audio = bytearray(SILENCE * int(lead_silence_s * SAMPLE_RATE))
    pauses: list[tuple[int, int]] = []
    gap_ms = 0
    for piece in pieces:
        if isinstance(piece, int):
            gap_ms += piece
            continue
        if gap_ms and len(audio) > int(lead_silence_s * SAMPLE_RATE):
            start = len(audio) // FRAME_BYTES
            audio += SILENCE * FRAME_BYTES * max(1, round(gap_ms / 20))
            pauses.append((start, len(audio) // FRAME_BYTES))
        gap_ms = 0
        audio += piece.audio[piece.onset_frame * FRAME_BYTES:piece.voiced_frames * FRAME_BYTES]
    audio += SILENCE * int(tail_silence_s * SAMPLE_RATE)
    if len(audio) % FRAME_BYTES:
        audio += SILENCE * (FRAME_BYTES - len(audio) % FRAME_BYTES)
    words = [p.text or p.label for p in pieces if not isinstance(p, int)]
    return Utterance(label=label or " … ".join(words), audio=bytes(audio), text=text or " ".join(words),
                     pauses=tuple(pauses))


def say(synth: Synth, text: str) -> Utterance:
    chunks = [np.asarray(c, dtype=np.int16) for c in synth.synthesize(text)]
    if not chunks:
        raise ValueError(f"the voice produced no audio for {text!r}")
    return from_pcm(np.concatenate(chunks), int(synth.sample_rate), label=text, text=text)
