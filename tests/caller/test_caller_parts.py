"""The caller's pieces: playback emulation, Twilio-side messages, audio in, record merge, CLI."""

from __future__ import annotations

import argparse
import json
import wave

import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from ringline.caller import twilio_sim
from ringline.caller.call import TurnResult
from ringline.caller.cli import _script, configure, prepare, run
from ringline.caller.playback import PlaybackEmulator
from ringline.caller.records_merge import merge_record
from ringline.caller.speech import read_wav, write_wav
from ringline.contracts.audio import mulaw_decode
from ringline.contracts.messages import CallRecord, TurnRecord

pytestmark = pytest.mark.unit

FRAME = b"\x00" * 160  # loud-ish mu-law


# -------------------------------------------------------------------------- playback


def test_frames_play_back_to_back_and_marks_wait_for_them() -> None:
    p = PlaybackEmulator()
    for _ in range(50):  # one second of audio arriving at once, as a burst
        p.on_media(10.0, FRAME)
    p.on_mark(10.0, "t:0")
    assert p.clock == pytest.approx(11.0)
    assert p.due_marks(10.99) == [] and not p.idle(10.99)
    assert p.due_marks(11.0) == ["t:0"]
    assert p.idle(11.0)


def test_audio_arriving_late_starts_when_it_arrives() -> None:
    p = PlaybackEmulator()
    p.on_media(10.0, FRAME)
    assert p.on_media(12.0, FRAME) == 12.0  # a gap: silence on the timeline
    pcm = p.timeline(origin=10.0)
    assert len(pcm) == int(2.02 * 8000)
    assert not pcm[int(0.1 * 8000):int(1.9 * 8000)].any()
    assert pcm[:160].any() and pcm[16000:16160].any()


def test_clear_drops_unplayed_audio_and_echoes_pending_marks() -> None:
    p = PlaybackEmulator()
    for _ in range(100):
        p.on_media(0.0, FRAME)  # two seconds queued
    p.on_mark(0.0, "t:0")
    p.on_media(0.0, FRAME)
    p.on_mark(0.0, "t:1")
    assert p.on_clear(0.5) == ["t:0", "t:1"]
    assert p.played_seconds() == pytest.approx(0.5)
    assert p.idle(0.5) and p.due_marks(10.0) == []
    assert p.on_media(0.6, FRAME) == 0.6  # new audio plays right away


# --------------------------------------------------------------------- twilio side


def test_messages_look_like_twilio() -> None:
    m = twilio_sim.StreamMessages("MZ" + "0" * 32, "CA" + "1" * 32, "AC" + "2" * 32)
    start = json.loads(m.start({"agent": "a"}))
    assert start["sequenceNumber"] == "1" and start["start"]["tracks"] == ["inbound"]
    assert start["start"]["mediaFormat"] == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
    media = json.loads(m.media(FRAME, 0))
    assert (media["sequenceNumber"], media["media"]["chunk"], media["media"]["timestamp"]) == ("2", "1", "0")
    media = json.loads(m.media(FRAME, 20))
    assert (media["sequenceNumber"], media["media"]["chunk"], media["media"]["timestamp"]) == ("3", "2", "20")
    assert json.loads(m.mark("t:0"))["sequenceNumber"] == "4"
    assert json.loads(m.stop())["stop"]["callSid"] == "CA" + "1" * 32


def test_sids_and_signature() -> None:
    sid = twilio_sim.sid("CA")
    assert sid.startswith("CA") and len(sid) == 34 and int(sid[2:], 16) >= 0
    form = twilio_sim.voice_webhook_form(sid, twilio_sim.sid("AC"), "+1", "+2")
    assert form["Direction"] == "inbound" and form["ApiVersion"] == "2010-04-01"
    url = "https://x.example/twilio/voice?agent=a"
    assert RequestValidator("tok").validate(url, form, twilio_sim.signature("tok", url, form))


def test_read_twiml() -> None:
    xml = ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://h/twilio/stream">'
           '<Parameter name="agent" value="sales"/></Stream></Connect></Response>')
    target = twilio_sim.read_twiml(xml)
    assert target == twilio_sim.StreamTarget("wss://h/twilio/stream", {"agent": "sales"})
    for bad in ("nope", "<Response><Say>hi</Say></Response>", '<Response><Connect><Stream url="http://h"/></Connect></Response>'):
        with pytest.raises(twilio_sim.TwimlError):
            twilio_sim.read_twiml(bad)


# ------------------------------------------------------------------------ audio in


def test_wav_any_rate_stereo_to_mulaw_frames(tmp_path, helpers) -> None:
    tone = helpers.tone(0.5, rate=22050)
    path = tmp_path / "stereo.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(22050)
        w.writeframes(np.repeat(tone, 2).astype("<i2").tobytes())
    utterance = read_wav(path)
    assert len(utterance.audio) % 160 == 0
    assert utterance.duration_s == pytest.approx(0.8, abs=0.03)  # 0.3 s lead silence + 0.5 s
    assert utterance.audio[:2400] == b"\xff" * 2400
    assert utterance.voiced_frames == pytest.approx(40, abs=2)
    assert np.abs(mulaw_decode(utterance.audio[2400:4000])).max() > 5000


def test_8_bit_wav_is_refused_with_a_reason(tmp_path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(b"\x80" * 800)
    with pytest.raises(ValueError, match="16-bit"):
        read_wav(path)


@pytest.mark.integration  # the real Piper voice
def test_say_uses_the_local_piper_voice() -> None:
    pytest.importorskip("piper")
    (utterance,) = prepare([("say", "Hello there.")])
    assert utterance.text == "Hello there." and 0.6 < utterance.duration_s < 3.0
    assert 0 < utterance.voiced_frames <= utterance.frames


# ---------------------------------------------------------------------- the record


def test_merge_record_by_marks_and_reply_links() -> None:
    turns = [TurnResult("agent", turn_ids=["g"]), TurnResult("caller", text="book a table", started_at=5.0),
             TurnResult("agent", turn_ids=["a1"], mouth_to_ear_ms=900.0)]
    record = CallRecord(call_id="CA1", turns=[
        TurnRecord(turn_id="g", speaker="agent", text="Hi!"),
        TurnRecord(turn_id="u1", speaker="caller", text="book a table."),
        TurnRecord(turn_id="a1", speaker="agent", text="For how many?", in_reply_to="u1",
                   latency_ms={"stt": 300.0, "brain": 400.0, "tts": 100.0, "edge": 2.0, "total": 802.0}),
    ])
    merge_record(turns, record)
    assert [t.text for t in turns] == ["Hi!", "book a table", "For how many?"]
    assert turns[1].heard_as == "book a table."
    assert turns[2].stages_ms["brain"] == 400.0


def test_merge_record_falls_back_to_edge_events_for_stages() -> None:
    turns = [TurnResult("caller", text="x", started_at=1.0, ended_at=2.0), TurnResult("agent", turn_ids=["a1"])]
    record = CallRecord(call_id="CA1", turns=[
        TurnRecord(turn_id="u1", speaker="caller", text="ex", started_at=1.4),
        TurnRecord(turn_id="a1", speaker="agent", text="why"),
    ], events=[{"name": "turn.first_audio", "turn_id": "a1",
                "timing": {"speech_ended_at": 2.0, "transcript_at": 2.3, "first_chunk_at": 2.8,
                           "first_audio_at": 2.9, "edge_sent_at": 2.91}}])
    merge_record(turns, record)
    assert turns[0].heard_as == "ex"
    assert turns[1].stages_ms == {"stt": 300.0, "brain": 500.0, "tts": 100.0, "edge": 10.0, "total": 910.0}


# ---------------------------------------------------------------------------- CLI


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure(parser)
    return parser.parse_args(list(argv))


def test_cli_options_and_script_order() -> None:
    args = parse("--say", "one", "--wav", "two.wav", "--say", "three", "--from", "+1", "--to", "+2",
                 "--agent", "sales", "--out", "a.wav", "--nats", "nats://h:4222", "--reply-timeout", "7", "--json")
    assert _script(args) == [("say", "one"), ("wav", "two.wav"), ("say", "three")]
    assert (args.from_, args.to, args.agent, str(args.out), args.nats, args.reply_timeout, args.json) == \
        ("+1", "+2", "sales", "a.wav", "nats://h:4222", 7.0, True)
    assert parse().url == "http://127.0.0.1:8080"


def test_cli_run_reports_an_unreachable_edge(tmp_path, helpers, capsys) -> None:
    wav = write_wav(tmp_path / "hi.wav", helpers.tone(0.3))
    code = run(parse("--url", f"http://127.0.0.1:{helpers.free_port()}", "--wav", str(wav), "--nats", "", "--json"))
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False and out["problems"][0].startswith("call failed")


def test_cli_run_bad_wav_is_exit_2(tmp_path, capsys) -> None:
    assert run(parse("--wav", str(tmp_path / "missing.wav"))) == 2
    assert "missing.wav" in capsys.readouterr().err
