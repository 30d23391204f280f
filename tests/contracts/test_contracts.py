"""Contracts: message models, subjects, the msgpack codec and audio helpers."""

from __future__ import annotations

import math

import msgpack
import numpy as np
import pytest
from pydantic import ValidationError

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample, rms_dbfs
from ringline.contracts.codec import CONTENT_TYPE, MalformedMessage, MsgpackCodec, pack, unpack
from ringline.contracts.messages import (
    AgentAudio,
    AudioFrame,
    CallStart,
    Control,
    TurnTiming,
    make_mark,
    parse_mark,
)

pytestmark = pytest.mark.unit


def test_every_message_carries_type_tag_and_version() -> None:
    frame = AudioFrame(call_id="CA1", seq=3, payload=b"\xff" * 160)
    data = frame.model_dump()
    assert data["type"] == "audio.frame" and data["v"] == 1
    assert Control(call_id="CA1", action="interrupt").type == "control"


def test_audio_travels_as_raw_msgpack_bin_not_base64() -> None:
    payload = bytes(range(160))
    body = pack(AudioFrame(call_id="CA1", seq=1, payload=payload))
    raw = msgpack.unpackb(body, raw=True)
    assert raw[b"payload"] == payload  # bin type, byte for byte
    assert len(body) < 160 + 120  # no base64 inflation (it would be 216+ bytes)
    assert AudioFrame.model_validate(unpack(body)).payload == payload


def test_nested_models_and_lists_pack() -> None:
    audio = AgentAudio(call_id="CA1", turn_id="t", seq=0, timing=TurnTiming(edge_sent_at=2.0))
    back = AgentAudio.model_validate(unpack(pack([audio]))[0])
    assert back.timing.edge_sent_at == 2.0


def test_malformed_body_is_a_clear_error() -> None:
    with pytest.raises(MalformedMessage, match="undecodable msgpack"):
        unpack(b"\xc1\xc1\xc1")


def test_invalid_messages_are_rejected_by_validation() -> None:
    with pytest.raises(ValidationError):
        AudioFrame(call_id="", seq=1, payload=b"")
    with pytest.raises(ValidationError):
        AudioFrame(call_id="CA1", seq=-1, payload=b"")
    with pytest.raises(ValidationError):
        Control(call_id="CA1", action="explode")


async def test_codec_hook_round_trip() -> None:
    codec = MsgpackCodec()
    body, content_type = await codec.encode(CallStart(call_id="CA9", caller="+1555"))
    assert content_type == CONTENT_TYPE

    class Msg:
        def __init__(self, body: bytes, content_type: str) -> None:
            self.body, self.content_type = body, content_type

    decoded = await codec.decode(Msg(body, content_type))
    assert CallStart.model_validate(decoded).caller == "+1555"


def test_subjects_are_built_from_validated_call_ids() -> None:
    assert subjects.audio_in("CA123") == "call.CA123.audio.in"
    assert subjects.control("CA123") == "call.CA123.control"
    for bad in ["", "a.b", "a b", "*", ">", "x" * 129]:
        with pytest.raises(subjects.InvalidCallId):
            subjects.audio_in(bad)


def test_marks_round_trip() -> None:
    assert parse_mark(make_mark("abc123", 7)) == ("abc123", 7)
    assert parse_mark("someone-elses-mark") == ("", -1)


def test_stage_shares_of_mouth_to_ear() -> None:
    timing = TurnTiming(speech_ended_at=10.0, transcript_at=10.4, first_chunk_at=10.7,
                        first_audio_at=10.85, edge_sent_at=10.86)
    stages = timing.stages_ms()
    assert stages["total"] == pytest.approx(860, abs=0.2)
    assert stages["stt"] + stages["brain"] + stages["tts"] + stages["edge"] == pytest.approx(stages["total"], abs=0.5)
    assert "total" not in TurnTiming(first_chunk_at=1.0, first_audio_at=1.1).stages_ms()


def test_mulaw_round_trip_keeps_the_signal() -> None:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * math.pi * 440 * t) * 12000).astype(np.int16)
    encoded = mulaw_encode(tone)
    assert len(encoded) == len(tone)
    back = mulaw_decode(encoded)
    error = np.abs(back.astype(np.int32) - tone).max()
    assert error < 12000 * 0.04  # mu-law quantisation error stays within a few percent
    assert mulaw_encode(np.zeros(4, np.int16)) == b"\xff" * 4  # silence is 0xFF on the phone


def test_resample_changes_rate_and_keeps_loudness() -> None:
    tone = (np.sin(2 * math.pi * 300 * np.arange(22050) / 22050) * 8000).astype(np.int16)
    out = resample(tone, 22050, 8000)
    assert len(out) == 8000
    assert abs(rms_dbfs(out) - rms_dbfs(tone)) < 0.5
