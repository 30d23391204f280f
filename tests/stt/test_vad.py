"""The endpointer on synthetic audio: tone bursts are speech, silence and faint noise are not."""

from __future__ import annotations

import numpy as np
import pytest

from ringline.services.stt.vad import FRAME_SAMPLES, Endpointer, EndpointerConfig, VadEvent

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # captured_at of the first sample


def feed(
    endpointer: Endpointer, pcm: np.ndarray, chunk: int = FRAME_SAMPLES, t0: float = T0
) -> list[tuple[float, VadEvent]]:
    """Push `pcm` in chunks stamped like a phone edge would; returns (time fed up to, event)."""
    out = []
    for start in range(0, len(pcm), chunk):
        piece = pcm[start : start + chunk]
        for event in endpointer.push(piece, t0 + start / 8000):
            out.append((t0 + (start + len(piece)) / 8000, event))
    return out


def decisions(events: list[tuple[float, VadEvent]]) -> list[tuple[float, VadEvent]]:
    """The decisions, without the `continuing` ticks (tested on their own)."""
    return [(fed, e) for fed, e in events if e.kind != "continuing"]


def kinds(events: list[tuple[float, VadEvent]]) -> list[str]:
    return [e.kind for _, e in decisions(events)]


def test_silence_and_faint_noise_are_not_speech(silence):
    endpointer = Endpointer()
    assert feed(endpointer, np.concatenate([silence(1000), silence(1000, noise=30)])) == []
    assert not endpointer.in_speech


@pytest.mark.parametrize("noise", [30, 300, 1000])
def test_line_noise_at_call_start_is_not_speech(silence, noise):
    # webrtcvad flags the first ~100 ms of any noise while it adapts; the warm-up hides that
    assert feed(Endpointer(), silence(2000, noise=noise)) == []


def test_start_and_stop_are_stamped_at_the_voiced_frames(tone, silence):
    audio = np.concatenate([silence(400), tone(1000), silence(1000)])
    events = decisions(feed(Endpointer(EndpointerConfig(end_silence_ms=500, early_silence_ms=200)), audio))
    assert kinds(events) == ["started", "paused", "stopped"]
    (started_fed, started), (paused_fed, paused), (stopped_fed, stopped) = events
    assert started.at == pytest.approx(T0 + 0.4)
    assert started_fed == pytest.approx(T0 + 0.4 + 0.06)  # confirmed after 3 voiced frames
    assert paused.at == stopped.at == pytest.approx(T0 + 1.4)  # end of the last voiced frame...
    assert paused_fed == pytest.approx(T0 + 1.4 + 0.2)
    assert stopped_fed == pytest.approx(T0 + 1.4 + 0.5)  # ...not when the silence was confirmed
    assert stopped.reason == "silence"
    assert stopped.started_at == started.at


def test_utterance_audio_has_preroll_and_a_short_tail(tone, silence):
    audio = np.concatenate([silence(400, noise=30), tone(1000), silence(1000)])
    events = feed(Endpointer(EndpointerConfig(preroll_ms=200, tail_ms=200)), audio)
    stopped = events[-1][1]
    assert stopped.audio is not None
    # 200 ms pre-roll + 1 s speech + 200 ms tail, sample-exact from the input
    assert len(stopped.audio) == 8000 * 1400 // 1000
    np.testing.assert_array_equal(stopped.audio, audio[1600 : 1600 + len(stopped.audio)])


def test_preroll_is_short_when_speech_starts_at_once(tone, silence):
    audio = np.concatenate([silence(140), tone(500), silence(800)])
    stopped = feed(Endpointer(EndpointerConfig(preroll_ms=200)), audio)[-1][1]
    np.testing.assert_array_equal(stopped.audio, audio[: len(stopped.audio)])
    assert len(stopped.audio) == 8000 * (140 + 500 + 200) // 1000


def test_early_audio_holds_all_the_final_speech_without_resumption(tone, silence):
    config = EndpointerConfig(early_silence_ms=160, tail_ms=200)
    events = feed(Endpointer(config), np.concatenate([silence(200), tone(800), silence(700)]))
    paused = next(e for _, e in events if e.kind == "paused")
    stopped = next(e for _, e in events if e.kind == "stopped")
    assert paused.at == stopped.at
    # the same audio, except that the early one has only the 160 ms of silence heard so far
    assert len(paused.audio) == 8000 * (200 + 800 + 160) // 1000
    np.testing.assert_array_equal(paused.audio, stopped.audio[: len(paused.audio)])


def test_a_300ms_pause_does_not_split_the_utterance(tone, silence):
    audio = np.concatenate([silence(200), tone(700), silence(300), tone(700), silence(800)])
    events = decisions(feed(Endpointer(EndpointerConfig(end_silence_ms=500, early_silence_ms=200)), audio))
    assert kinds(events) == ["started", "paused", "resumed", "paused", "stopped"]
    stopped = events[-1][1]
    assert stopped.started_at == pytest.approx(T0 + 0.2)
    assert stopped.at == pytest.approx(T0 + 1.9)
    assert events[2][1].at == pytest.approx(T0 + 1.2)  # resumed at the next voiced frame


def test_a_pause_longer_than_the_end_threshold_splits(tone, silence):
    audio = np.concatenate([silence(200), tone(700), silence(600), tone(700), silence(800)])
    events = feed(Endpointer(EndpointerConfig(end_silence_ms=500)), audio)
    assert kinds(events).count("started") == 2
    assert kinds(events).count("stopped") == 2


def test_two_voiced_frames_are_a_click_not_speech(tone, silence):
    audio = np.concatenate([silence(200), tone(40), silence(500)])
    assert feed(Endpointer(EndpointerConfig(start_frames=3)), audio) == []


def test_max_length_forces_an_end_and_speech_restarts(tone, silence):
    config = EndpointerConfig(max_utterance_ms=1000, preroll_ms=200)
    events = decisions(feed(Endpointer(config), np.concatenate([silence(200), tone(1500), silence(800)])))
    assert kinds(events)[:2] == ["started", "stopped"]
    forced = events[1][1]
    assert forced.reason == "max_length"
    assert forced.at - forced.started_at == pytest.approx(1.0)
    assert len(forced.audio) == 8000 * 1200 // 1000  # pre-roll + 1 s, nothing from after the cut
    # the caller keeps talking: a new utterance starts right after the cut, without re-using audio
    assert kinds(events)[2:] == ["started", "paused", "stopped"]
    assert events[2][1].at == pytest.approx(T0 + 1.2)
    assert len(events[-1][1].audio) == 8000 * (500 + 200) // 1000


@pytest.mark.parametrize("chunk", [1, 77, 160, 333, 1600])
def test_any_payload_size_gives_the_same_decisions(tone, silence, chunk):
    audio = np.concatenate([silence(300), tone(600), silence(700)])
    expected = [(e.kind, e.at) for _, e in feed(Endpointer(), audio) if e.kind != "continuing"]
    got = [(e.kind, e.at) for _, e in feed(Endpointer(), audio, chunk=chunk) if e.kind != "continuing"]
    assert [k for k, _ in got] == [k for k, _ in expected] == ["started", "paused", "stopped"]
    assert [t for _, t in got] == pytest.approx([t for _, t in expected], abs=1e-6)


def test_empty_payloads_are_ignored(tone, silence):
    endpointer = Endpointer()
    assert endpointer.push(silence(200), T0) == []
    assert endpointer.push(np.zeros(0, dtype=np.int16), T0 + 0.2) == []
    assert endpointer.push(tone(100), T0 + 0.2)[0].kind == "started"


def test_early_decode_can_be_disabled(tone, silence):
    audio = np.concatenate([silence(200), tone(500), silence(600)])
    events = feed(Endpointer(EndpointerConfig(early_silence_ms=0)), audio)
    assert kinds(events) == ["started", "stopped"]


def test_reset_forgets_a_partial_utterance(tone, silence):
    endpointer = Endpointer()
    feed(endpointer, np.concatenate([silence(200), tone(500)]))
    assert endpointer.in_speech
    endpointer.reset()
    assert not endpointer.in_speech
    assert feed(endpointer, silence(1000)) == []


def test_continuing_ticks_count_voiced_audio_only(tone, silence):
    audio = np.concatenate([silence(200), tone(400), silence(300), tone(400), silence(800)])
    events = feed(Endpointer(EndpointerConfig(end_silence_ms=600, continuing_ms=50)), audio)
    started = events[0][1]
    assert started.kind == "started" and started.voiced_ms == 60  # three frames confirm the onset
    ticks = [(fed, e) for fed, e in events if e.kind == "continuing"]
    voiced = [e.voiced_ms for _, e in ticks]
    assert voiced == sorted(voiced) and len(set(voiced)) == len(voiced)
    assert all(0 < b - a <= 60 for a, b in zip([60, *voiced], voiced, strict=False))  # every ~50 ms
    assert voiced[-1] == 800  # the pause is not counted...
    assert all(e.started_at == started.at for _, e in ticks)
    # ...and no tick is sent during it: each one leaves with the voiced frame that completes it
    assert not [e for fed, e in ticks if T0 + 0.6 < e.at <= T0 + 0.9]
    assert all(fed == pytest.approx(e.at) for fed, e in ticks)
    stopped = events[-1][1]
    assert stopped.kind == "stopped" and stopped.voiced_ms == 800


def test_an_end_policy_decides_when_the_silence_is_enough(tone, silence):
    asked: list[float] = []

    def policy(silence_ms: float) -> str | None:
        asked.append(silence_ms)
        return "complete" if silence_ms >= 300 else None

    endpointer = Endpointer(EndpointerConfig(end_silence_ms=600), end_policy=policy)
    events = feed(endpointer, np.concatenate([silence(200), tone(500), silence(400)]))
    assert kinds(events) == ["started", "paused", "stopped"]
    stopped = events[-1][1]
    assert stopped.reason == "complete" and stopped.silence_ms == 300
    assert events[-1][0] == pytest.approx(T0 + 0.7 + 0.3)
    assert asked[0] == 20  # asked on every silent frame of the utterance


def test_check_ends_the_utterance_between_frames(tone, silence):
    verdict: list[str] = []
    endpointer = Endpointer(end_policy=lambda silence_ms: verdict[0] if verdict else None)
    events = feed(endpointer, np.concatenate([silence(200), tone(500), silence(200)]))
    assert kinds(events) == ["started", "paused"] and endpointer.silence_ms == 200
    assert endpointer.check() == []
    verdict.append("complete")  # an early transcript arrives between two frames
    [stopped] = endpointer.check()
    assert stopped.kind == "stopped" and stopped.reason == "complete"
    assert stopped.at == pytest.approx(T0 + 0.7)
    assert not endpointer.in_speech and endpointer.check() == []


def test_the_next_preroll_never_reuses_speech_of_the_last_utterance(tone, silence):
    # ended after only 100 ms of silence: the next pre-roll may hold those 100 ms, not speech
    endpointer = Endpointer(
        EndpointerConfig(preroll_ms=200), end_policy=lambda ms: "complete" if ms >= 100 else None
    )
    first = np.concatenate([silence(200), tone(400, freq=150), silence(100)])
    second = np.concatenate([tone(400, freq=220), silence(300)])
    events = feed(endpointer, np.concatenate([first, second]))
    stops = [e for _, e in events if e.kind == "stopped"]
    assert len(stops) == 2
    preroll = stops[1].audio[: 8000 * 100 // 1000]
    np.testing.assert_array_equal(preroll, np.zeros_like(preroll))


def test_a_gap_in_the_stream_does_not_shift_later_timestamps(tone, silence):
    # an odd-sized payload leaves part of a frame pending; then nothing arrives for 300 ms
    endpointer = Endpointer(EndpointerConfig(end_silence_ms=500))
    first = np.concatenate([silence(200), tone(500), silence(700)])[:-37]
    feed(endpointer, first, chunk=len(first))
    later = T0 + 5.0  # the next audio was captured well after the first
    events = decisions(feed(endpointer, np.concatenate([tone(500), silence(700)]), t0=later))
    assert [e.kind for _, e in events] == ["started", "paused", "stopped"]
    assert events[0][1].at == pytest.approx(later, abs=0.021)
    assert events[-1][1].at == pytest.approx(later + 0.5, abs=0.021)
