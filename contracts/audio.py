"""Phone audio helpers shared by every stage: G.711 mu-law and resampling (soxr).

Phone audio is 8 kHz mu-law. Models want 16-bit PCM at their own rate (Whisper 16 kHz,
Piper 22.05 kHz), so stages convert at their edges with these functions.
"""

from __future__ import annotations

import numpy as np
import soxr

_BIAS = 0x84
_CLIP = 32635


def _build_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


_DECODE = _build_decode_table()


def mulaw_decode(data: bytes) -> np.ndarray:
    """mu-law bytes -> int16 PCM samples."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)]


def mulaw_encode(pcm: np.ndarray) -> bytes:
    """int16 PCM samples -> mu-law bytes (G.711)."""
    samples = np.asarray(pcm, dtype=np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _CLIP) + _BIAS
    exponent = np.clip(np.floor(np.log2(magnitude)).astype(np.int32) - 7, 0, 7)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def resample(pcm: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample int16 (or float) PCM with soxr; returns the input dtype."""
    if from_rate == to_rate or len(pcm) == 0:
        return pcm
    return soxr.resample(pcm, from_rate, to_rate, quality="HQ")


def pcm16_to_float(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / 32768.0


def rms_dbfs(pcm: np.ndarray) -> float:
    """Loudness of int16 PCM in dBFS (-inf for digital silence)."""
    if len(pcm) == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(pcm.astype(np.float64)))))
    return 20 * np.log10(rms / 32768.0) if rms > 0 else float("-inf")
