"""Twilio Media Streams messages as Twilio actually sends them, and every way they can be wrong."""

from __future__ import annotations

import base64
import json

import pytest

from ringline.services.telephony import twilio_protocol as tp

pytestmark = pytest.mark.unit


def dumps(msg: dict) -> str:
    return json.dumps(msg)


def test_connected(tw) -> None:
    assert tp.parse_message(dumps(tw.connected())) == tp.Connected(protocol="Call", version="1.0.0")


def test_start_with_string_sequence_number_and_custom_parameters(tw) -> None:
    event = tp.parse_message(dumps(tw.start(seq=1)))
    assert isinstance(event, tp.Start)
    assert event.sequence_number == 1
    assert (event.stream_sid, event.call_sid, event.account_sid) == (tw.STREAM_SID, tw.CALL_SID, tw.ACCOUNT_SID)
    assert event.tracks == ("inbound",)
    assert event.custom_parameters["agent"] == "sales"
    assert event.media_format == {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}


def test_media_decodes_payload_and_string_numbers(tw) -> None:
    raw = bytes(range(160))
    event = tp.parse_message(dumps(tw.media(seq=42, chunk=40, payload=raw)))
    assert event == tp.Media(stream_sid=tw.STREAM_SID, sequence_number=42, chunk=40, timestamp=800,
                             track="inbound", payload=raw)


def test_media_accepts_numbers_as_numbers_too(tw) -> None:
    msg = tw.media(seq=3, chunk=2)
    msg["sequenceNumber"], msg["media"]["chunk"], msg["media"]["timestamp"] = 3, 2, 40
    event = tp.parse_message(dumps(msg))
    assert (event.sequence_number, event.chunk, event.timestamp) == (3, 2, 40)


def test_mark_dtmf_stop(tw) -> None:
    assert tp.parse_message(dumps(tw.mark("t1:0", seq=5))) == tp.Mark(tw.STREAM_SID, "t1:0", 5)
    assert tp.parse_message(dumps(tw.dtmf("#", seq=6))) == tp.Dtmf(tw.STREAM_SID, "#", "inbound_track", 6)
    stop = tp.parse_message(dumps(tw.stop(seq=7)))
    assert stop == tp.Stop(tw.STREAM_SID, tw.CALL_SID, tw.ACCOUNT_SID, 7)


def test_bytes_input_is_read_as_utf8(tw) -> None:
    assert isinstance(tp.parse_message(dumps(tw.connected()).encode()), tp.Connected)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"sequenceNumber": "1"}', "missing field 'event'"),
        ('{"event": "teleport"}', "unknown event"),
        ('{"event": "media", "sequenceNumber": "x1", "media": {"payload": "AAAA"}}', "non-negative integer"),
        ('{"event": "media", "sequenceNumber": "-1", "media": {"payload": "AAAA"}}', "non-negative integer"),
        ('{"event": "media", "sequenceNumber": "1"}', "'media'"),
        ('{"event": "media", "media": {}}', "'payload'"),
        ('{"event": "media", "media": {"payload": "not*base64"}}', "base64"),
        ('{"event": "media", "media": {"payload": "AAA"}}', "base64"),
        ('{"event": "mark", "mark": {}}', "'name'"),
        ('{"event": "dtmf", "dtmf": {"digit": "55"}}', "DTMF"),
        ('{"event": "start"}', "'start'"),
    ],
)
def test_errors_say_why(text: str, reason: str) -> None:
    with pytest.raises(tp.ProtocolError, match=reason):
        tp.parse_message(text)


@pytest.mark.parametrize(
    "fmt",
    [
        {"encoding": "audio/l16", "sampleRate": 8000, "channels": 1},
        {"encoding": "audio/x-mulaw", "sampleRate": 16000, "channels": 1},
        {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 2},
        {"encoding": "audio/x-mulaw", "sampleRate": "fast", "channels": 1},
    ],
)
def test_start_with_another_media_format_is_refused(tw, fmt: dict) -> None:
    with pytest.raises(tp.ProtocolError, match="mediaFormat"):
        tp.parse_message(dumps(tw.start(fmt=fmt)))


def test_start_without_call_sid_is_refused(tw) -> None:
    msg = tw.start()
    del msg["start"]["callSid"]
    with pytest.raises(tp.ProtocolError, match="callSid"):
        tp.parse_message(dumps(msg))


def test_outbound_media_is_split_into_padded_frames() -> None:
    messages = [json.loads(m) for m in tp.media_messages("MZ1", b"\x00" * 330)]
    assert [m["event"] for m in messages] == ["media"] * 3
    frames = [base64.b64decode(m["media"]["payload"]) for m in messages]
    assert [len(f) for f in frames] == [160, 160, 160]
    assert frames[2] == b"\x00" * 10 + b"\xff" * 150
    assert tp.media_messages("MZ1", b"") == []


def test_outbound_mark_and_clear() -> None:
    assert json.loads(tp.mark_message("MZ1", "t:1")) == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "t:1"}}
    assert json.loads(tp.clear_message("MZ1")) == {"event": "clear", "streamSid": "MZ1"}


def test_translation_to_contracts(tw) -> None:
    start = tp.parse_message(dumps(tw.start(custom={"caller": "+1555", "x": "y"})))
    call = tp.to_call_start(start, tw.CALL_SID, "fallback-agent", 10.0)
    expected = ("fallback-agent", "+1555", "", {"caller": "+1555", "x": "y"})
    assert (call.agent_id, call.caller, call.callee, call.custom) == expected
    assert call.stream_sid == tw.STREAM_SID and call.started_at == 10.0
    frame = tp.to_audio_frame(tp.parse_message(dumps(tw.media(seq=9, chunk=7))), "CA1", 11.0)
    assert (frame.seq, frame.payload, frame.captured_at) == (9, b"\x7f" * 160, 11.0)
    playback = tp.to_playback(tp.Mark("MZ", "turn-1:4", 3), "CA1", 12.0)
    assert (playback.mark, playback.turn_id) == ("turn-1:4", "turn-1")
    control = tp.to_dtmf_control(tp.Dtmf("MZ", "7", "inbound_track", 4), "CA1", 13.0)
    assert (control.action, control.digit) == ("dtmf", "7")
