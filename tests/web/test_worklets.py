"""The softphone's audio processors (AudioWorklets), run in node: what the browser sends is the
8 kHz mu-law the edge and the STT expect, what it plays is the agent's audio at the page's rate,
marks come back once their audio has played, and `clear` stops playback and returns the marks."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode

pytestmark = pytest.mark.integration  # node runs the worklets (a subprocess)

NODE = shutil.which("node")
HERE = Path(__file__).resolve().parent


def _tone_hz(pcm: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(len(pcm))))
    return float(np.argmax(spectrum) * rate / len(pcm))


@pytest.fixture(scope="module", params=[48000, 44100])
def run(request: pytest.FixtureRequest) -> tuple[int, dict]:
    if NODE is None:
        pytest.skip("node is not installed (scripts/install.sh installs nodejs as root)")
    out = subprocess.run([NODE, str(HERE / "worklets.js"), str(request.param)], capture_output=True, text=True,
                         timeout=60, check=True)
    return request.param, json.loads(out.stdout)


def test_the_page_decodes_mu_law_as_the_edge_does(run) -> None:
    _, seen = run
    assert seen["decode"] == mulaw_decode(bytes(range(256))).astype(int).tolist()


def test_the_microphone_goes_out_as_8_khz_mu_law_in_20_ms_frames(run) -> None:
    _, seen = run
    captured = bytes(seen["captured"])
    assert len(captured) % 160 == 0 and 49 * 160 <= len(captured) <= 50 * 160  # one second: 50 frames
    pcm = mulaw_decode(captured).astype(np.float64)
    assert _tone_hz(pcm, 8000) == pytest.approx(440, abs=5)
    level = np.sqrt(np.mean(pcm[800:] ** 2)) / 32768
    assert level == pytest.approx(0.5 / np.sqrt(2), rel=0.1)  # a half-scale sine, kept at its level


def test_the_agent_plays_at_the_page_rate_and_its_mark_comes_back_after_it(run) -> None:
    rate, seen = run
    played = np.array(seen["played"], dtype=np.float64)
    sounding = np.flatnonzero(np.abs(played) > 1000)
    assert (sounding[-1] - sounding[0]) / rate == pytest.approx(len(seen["captured"]) / 8000, abs=0.01)
    assert _tone_hz(played[sounding[0]:sounding[-1]], rate) == pytest.approx(440, abs=5)
    kinds = [m["type"] for m in seen["messages"]]
    assert kinds == ["start", "mark", "idle"] and seen["messages"][1]["name"] == "t1:0"


def test_a_clear_stops_playback_and_returns_the_pending_mark(run) -> None:
    _, seen = run
    cleared = next(m for m in seen["cleared"] if m["type"] == "cleared")
    assert cleared["marks"] == ["t2:0"] and cleared["wasPlaying"]
    assert 600 < cleared["flushedMs"] < 800  # about 1 s of audio queued, a quarter of it played
    assert seen["cleared"][-1]["type"] == "idle"
