"""A learned end-of-turn judge: Smart Turn v3.2 (BSD-2, Daily), an ONNX model on onnxruntime.

It hears the last (up to) 8 s of the caller's turn and says how likely the turn is complete, from
the voice itself (intonation, a drawn-out "and...", a question's rise), not from words. The model
file ships inside the `pipecat-ai` wheel; `scripts/install.sh` takes that one file
(`scripts/smart_turn_model.py`, sha256-checked) into the gitignored `models/` folder. Nothing is
downloaded at run time: without the file the stage logs so once and keeps its text rules.

Input, as the model was trained: 16 kHz mono float audio in [-1, 1], the last 8 s of it, zero-padded
at the front to exactly 8 s, normalized to zero mean and unit variance, as Whisper's 80-bin log-mel
spectrogram (25 ms Hann window, 10 ms hop, Slaney mel scale 0-8 kHz, log10 floored at 8 below the
peak, scaled to about [-1, 1]): `input_features` shaped (1, 80, 800). Output: one probability.
Phone audio (8 kHz) is upsampled first; above 4 kHz there is simply nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ringline.contracts.audio import resample

log = logging.getLogger("ringline.stt.smart_turn")

MODEL_FILE = "smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / MODEL_FILE

RATE = 16_000
WINDOW_S = 8
N_FFT = 400
HOP = 160
N_MELS = 80
FRAMES = WINDOW_S * RATE // HOP  # 800


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = 3.0 * hz / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = 200.0 * mel / 3.0
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters with Slaney area normalization."""
    bins = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(RATE / 2)), N_MELS + 2))
    lower = (bins[None, :] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
    upper = (edges[2:, None] - bins[None, :]) / (edges[2:] - edges[1:-1])[:, None]
    filters = np.maximum(0.0, np.minimum(lower, upper))
    return filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]


_FILTERS = mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann


def log_mel(audio: np.ndarray) -> np.ndarray:
    """Whisper's log-mel features of exactly 8 s of 16 kHz float audio: (80, 800) float32."""
    x = np.asarray(audio, dtype=np.float32)
    x = (x - x.mean()) / np.sqrt(x.var() + 1e-7)
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2
    mel = np.log10(np.maximum(power @ _FILTERS.T, 1e-10)).T[:, :-1]
    mel = np.maximum(mel, mel.max() - 8.0)
    return ((mel + 4.0) / 4.0).astype(np.float32)


def last_window(pcm: np.ndarray, rate: int) -> np.ndarray:
    """int16 PCM at `rate` -> the last 8 s at 16 kHz, float in [-1, 1], zero-padded at the front."""
    audio = resample(np.asarray(pcm, dtype=np.float32) / 32768.0, rate, RATE)
    audio = audio[-WINDOW_S * RATE :]
    return np.pad(audio, (WINDOW_S * RATE - audio.size, 0))


@dataclass(frozen=True)
class TurnJudgement:
    probability: float
    """How likely the caller's turn is complete."""
    ms: float
    """Inference time (features included)."""


class SmartTurn:
    """One per process; `judge` runs in a worker thread (one onnxruntime thread, no spinning)."""

    name = "smart-turn-v3.2"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or DEFAULT_MODEL
        self._session: Any = None

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def load(self, wanted: bool = True) -> bool:
        """Load the model; False (and one clear log line) when its file is missing or altered.
        `wanted`: the service turns it on for every call (else only agents that ask may use it)."""
        if self._session is not None:
            return True
        if not self.path.is_file():
            log.log(logging.WARNING if wanted else logging.INFO,
                    "end-of-turn model %s not found (run scripts/install.sh); "
                    "ending turns by silence and text rules only", self.path)
            return False
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()
        if digest != MODEL_SHA256:
            log.warning("end-of-turn model %s has sha256 %s, not %s; not using it", self.path, digest, MODEL_SHA256)
            return False
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.judge(np.zeros(1600, dtype=np.int16), 8000)  # the first run is slow: not on a caller
        log.info("end-of-turn model %s loaded", self.path.name)
        return True

    def judge(self, pcm: np.ndarray, rate: int = 8000) -> TurnJudgement:
        """How likely the turn that ends with `pcm` (int16, any length) is complete."""
        if self._session is None:
            raise RuntimeError("SmartTurn.load() first")
        started = time.perf_counter()
        features = log_mel(last_window(pcm, rate))[None]
        (output,) = self._session.run(None, {"input_features": features})
        probability = float(np.asarray(output).reshape(-1)[0])
        return TurnJudgement(probability, (time.perf_counter() - started) * 1000)
