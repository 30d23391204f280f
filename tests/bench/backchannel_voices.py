"""Backchannels of set lengths in several voices, for the conversation bench (bench only).

Voices: the project's Piper voice, and the speech engines Debian offers that are installed here
(espeak-ng; flite's slt and awb; festival's kal): each says the word at a speaking rate fitted
so that its speech lasts the target length, as the caller measures it (first to last frame with
speech in it). A cough is made, not spoken: a burst of noise over a low buzz, with a quick
attack and a decay. Engines that are not installed are left out (`available`).

    apt-get install espeak-ng flite festival festvox-kallpc16k
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ringline.caller.speech import Synth, Utterance, from_pcm, load_synth

Render = Callable[[str, float], tuple[np.ndarray, int]]
"""(text, duration factor) -> int16 PCM and its sample rate; factor 2 speaks twice as slowly."""

TOLERANCE = 0.08  # a fitted word lasts within 8 % of the target


def _wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        if wav.getnchannels() > 1:
            pcm = pcm.reshape(-1, wav.getnchannels()).mean(axis=1).astype(np.int16)
        return pcm, wav.getframerate()


def _run_to_wav(command: list[str], stdin: str | None = None) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.wav"
        subprocess.run([part.replace("{out}", str(out)) for part in command], input=stdin, text=True,
                       check=True, capture_output=True, timeout=30)
        return _wav(out)


def _piper() -> Render:
    synth: Synth = load_synth(threads=1)
    scales = synth._scales  # type: ignore[attr-defined]  # [noise, length, noise_w]: the bench sets the length
    base = float(scales[1])

    def render(text: str, factor: float) -> tuple[np.ndarray, int]:
        scales[1] = base * factor
        try:
            return np.concatenate([np.asarray(c, dtype=np.int16) for c in synth.synthesize(text)]), synth.sample_rate
        finally:
            scales[1] = base

    return render


def _espeak(text: str, factor: float) -> tuple[np.ndarray, int]:
    wpm = int(min(500, max(60, 175 / factor)))
    return _run_to_wav(["espeak-ng", "-v", "en-us", "-s", str(wpm), "-w", "{out}", text])


def _flite(voice: str) -> Render:
    def render(text: str, factor: float) -> tuple[np.ndarray, int]:
        return _run_to_wav(["flite", "-voice", voice, "--setf", f"duration_stretch={factor:.3f}", "-t", text,
                            "-o", "{out}"])

    return render


def _festival(text: str, factor: float) -> tuple[np.ndarray, int]:
    return _run_to_wav(["text2wave", "-o", "{out}", "-eval", "(voice_kal_diphone)",
                        "-eval", f"(Parameter.set 'Duration_Stretch {factor:.3f})"], stdin=text)


VOICES: dict[str, tuple[str, Callable[[], Render]]] = {
    "piper": ("", _piper),
    "espeak": ("espeak-ng", lambda: _espeak),
    "flite-slt": ("flite", lambda: _flite("slt")),
    "flite-awb": ("flite", lambda: _flite("awb")),
    "festival-kal": ("text2wave", lambda: _festival),
}


def available(names: list[str]) -> list[str]:
    """The voices among `names` whose engine is installed here."""
    return [n for n in names if n in VOICES and (not VOICES[n][0] or shutil.which(VOICES[n][0]))]


class Voices:
    """Renders words at fitted lengths; each engine is loaded once."""

    def __init__(self) -> None:
        self._render: dict[str, Render] = {}

    def natural(self, voice: str, text: str) -> Utterance:
        """`text` said by `voice` at its own rate."""
        pcm, rate = self._engine(voice)(text, 1.0)
        return from_pcm(level(pcm), rate, label=text, text=text)

    def _engine(self, voice: str) -> Render:
        if voice not in self._render:
            self._render[voice] = VOICES[voice][1]()
        return self._render[voice]

    def word(self, voice: str, text: str, target_ms: float) -> Utterance:
        """`text` said by `voice` so its speech lasts about `target_ms` (the closest the engine's
        speaking rate reaches; the utterance's `voiced_ms` says what it is)."""
        render, factor, best = self._engine(voice), 1.0, None
        for _ in range(6):
            pcm, rate = render(text, factor)
            pcm = level(pcm)
            utterance = from_pcm(pcm, rate, label=f"{text} [{voice} {target_ms:.0f} ms]")
            if best is None or abs(utterance.voiced_ms - target_ms) < abs(best.voiced_ms - target_ms):
                best = utterance
            if not utterance.voiced_ms or abs(utterance.voiced_ms - target_ms) <= TOLERANCE * target_ms:
                break
            factor = min(4.0, max(0.2, factor * target_ms / utterance.voiced_ms))
        assert best is not None
        return best


def level(pcm: np.ndarray, peak: float = 16000.0) -> np.ndarray:
    """Every voice at one level (peak about -6 dBFS), as a phone line would bring it."""
    loudest = float(np.max(np.abs(pcm.astype(np.float32)))) if pcm.size else 0.0
    return pcm if not loudest else np.asarray(pcm.astype(np.float32) * peak / loudest, dtype=np.int16)


def cough(target_ms: float, seed: int = 0) -> Utterance:
    """A cough-like burst lasting about `target_ms`: band-limited noise over a 130 Hz buzz, 15 ms
    attack, decaying by 35 dB (where the caller's measure ends it) at `target_ms`."""
    rate, rng = 8000, np.random.default_rng(seed)
    n = int(target_ms * rate / 1000)
    t = np.arange(n) / rate
    spectrum = np.fft.rfft(rng.normal(size=n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    spectrum[(freqs < 250) | (freqs > 3200)] = 0
    noise = np.fft.irfft(spectrum, n)
    noise /= max(1e-9, float(np.max(np.abs(noise))))
    buzz = 2 * ((130 * t) % 1.0) - 1
    envelope = np.minimum(1.0, t / 0.015) * np.exp(-t / (target_ms / 1000 / 4.03))
    pcm = (0.8 * noise + 0.35 * buzz) * envelope
    pcm = level(np.asarray(pcm / max(1e-9, float(np.max(np.abs(pcm)))) * 32000, dtype=np.int16))
    return from_pcm(pcm, rate, label=f"(cough) [cough {target_ms:.0f} ms]")
