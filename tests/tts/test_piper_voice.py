"""The blocking Piper wrapper (also used by the simulated caller): real voice, real audio."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode, rms_dbfs
from ringline.contracts.messages import SAMPLE_RATE
from ringline.services.tts.piper_voice import (
    PiperSynth,
    SynthCancel,
    default_voice_path,
    synthesize_phone_audio,
)

pytestmark = pytest.mark.integration

SENTENCE = "Thanks for calling Ringline, how can I help you today?"


def test_the_packaged_voice_is_found_without_downloading() -> None:
    path = default_voice_path()
    assert path.name == "en_US-joe-medium.onnx" and path.is_file()


def test_phone_audio_of_a_sentence_is_plausible_speech(piper_synth: PiperSynth) -> None:
    audio = synthesize_phone_audio(piper_synth, SENTENCE)
    duration = len(audio) / SAMPLE_RATE  # mu-law: one byte a sample
    assert 1.5 < duration < 6.0  # ~11 words at a normal speaking rate
    pcm = mulaw_decode(audio)
    assert rms_dbfs(pcm) > -30  # clearly audible, not silence
    voiced = [rms_dbfs(pcm[i : i + 160]) > -40 for i in range(0, len(pcm) - 160, 160)]
    assert sum(voiced) / len(voiced) > 0.5  # mostly speech, not a click in silence


def test_one_int16_chunk_per_sentence_at_the_voice_rate(piper_synth: PiperSynth) -> None:
    chunks = list(piper_synth.synthesize("Hello there. This is the second sentence. And a third!"))
    assert len(chunks) == 3
    assert piper_synth.sample_rate == 22050
    assert all(c.dtype == np.int16 and c.ndim == 1 and len(c) > 0.3 * piper_synth.sample_rate for c in chunks)


def test_nothing_to_say_gives_no_audio(piper_synth: PiperSynth) -> None:
    assert list(piper_synth.synthesize("")) == []
    assert synthesize_phone_audio(piper_synth, "   ") == b""


def test_cancel_stops_between_and_within_sentences(piper_synth: PiperSynth) -> None:
    text = " ".join(f"This is sentence number {n} of a rather long answer." for n in range(1, 9))
    cancel = SynthCancel()
    produced = []
    for pcm in piper_synth.synthesize(text, cancel):
        produced.append(pcm)
        cancel.cancel()
    assert len(produced) == 1

    # From another thread while a sentence is being inferred: the run is aborted, not finished.
    cancel = SynthCancel()
    timer = threading.Timer(0.01, cancel.cancel)
    timer.start()
    produced = list(piper_synth.synthesize(text, cancel))
    timer.join()
    assert len(produced) < 8


def test_length_scale_slows_the_voice_down() -> None:
    normal = PiperSynth(length_scale=1.0)
    slow = PiperSynth(length_scale=1.5)
    assert len(synthesize_phone_audio(slow, SENTENCE)) > 1.25 * len(synthesize_phone_audio(normal, SENTENCE))
