"""Voice activity beside a cloud STT: the local VAD's speech events in the cloud's turns."""

from __future__ import annotations

import numpy as np
import pytest

from ringline.services.stt.cloud_voice import CloudVoice
from ringline.services.stt.vad import EndpointerConfig

from .conftest import make_silence, make_tone

pytestmark = pytest.mark.unit


class Line:
    """Feeds 20 ms frames to a `CloudVoice` on a steady clock."""

    def __init__(self, voice: CloudVoice) -> None:
        self.voice = voice
        self.clock = 1000.0
        self.events = []

    def play(self, pcm: np.ndarray) -> list:
        out = []
        for start in range(0, pcm.size, 160):
            out.extend(self.voice.push(pcm[start:start + 160], self.clock))
            self.clock += 0.02
        self.events.extend(out)
        return out


def test_speech_events_carry_the_voiced_time_as_the_caller_speaks():
    line = Line(CloudVoice("c1"))
    line.play(make_silence(300))
    events = line.play(make_tone(1000))
    started, *ticks = events
    assert started.kind == "started" and ticks and {t.kind for t in ticks} == {"continuing"}
    voiced = [t.voiced_ms for t in ticks]
    assert voiced == sorted(voiced) and voiced[-1] >= 900  # the brain can pause/confirm on these
    assert len({e.utterance_id for e in events}) == 1


def test_a_pause_inside_the_cloud_turn_keeps_counting_the_turn():
    line = Line(CloudVoice("c1", EndpointerConfig(end_silence_ms=400)))
    line.play(make_silence(200))
    line.play(make_tone(500))
    pause = line.play(make_silence(600))
    assert [e.kind for e in pause] == ["stopped"]  # the VAD heard the caller stop
    again = line.play(make_tone(500))
    assert again[0].kind == "started" and again[0].utterance_id == pause[0].utterance_id
    assert again[-1].voiced_ms > pause[0].voiced_ms + 400  # both stretches of speech count
    ended = line.voice.turn_ended(line.clock)
    assert [e.kind for e in ended] == ["stopped"]


def test_the_cloud_ending_the_turn_mid_speech_opens_the_next_turn():
    line = Line(CloudVoice("c1"))
    line.play(make_silence(200))
    first = line.play(make_tone(400))
    (stopped,) = line.voice.turn_ended(line.clock)
    assert stopped.kind == "stopped" and stopped.utterance_id == first[0].utterance_id
    more = line.play(make_tone(300))
    assert more[0].kind == "started" and more[0].utterance_id != first[0].utterance_id
    assert more[-1].voiced_ms <= 320  # the new turn counts only its own speech


def test_the_cloud_speech_start_is_published_only_when_the_vad_was_not_first():
    voice = CloudVoice("c1")
    (started,) = voice.cloud_started(5.0)
    assert started.kind == "started" and started.voiced_ms == 0
    line = Line(voice)
    line.play(make_silence(200))
    vad = line.play(make_tone(200))
    assert vad[0].utterance_id == started.utterance_id
    assert voice.cloud_started(6.0) == []  # already said for this turn


def test_a_turn_past_the_maximum_length_is_cut_once():
    line = Line(CloudVoice("c1", EndpointerConfig(max_utterance_ms=2000)))
    line.play(make_silence(200))
    line.play(make_tone(1500))
    assert not line.voice.too_long(line.clock)
    line.play(make_tone(700))
    assert line.voice.too_long(line.clock) and line.voice.finalizing
    assert not line.voice.too_long(line.clock + 1)  # asked once; the cloud's final ends the turn
