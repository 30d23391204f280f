"""Twilio Media Streams <-> Ringline contracts. Pure: no I/O, no clock, no bus.

Inbound text messages become typed events (`parse_message`), outbound messages are built by
`media_messages`, `mark_message` and `clear_message`, and the `to_*` functions translate events
into contract messages. Twilio sends every number in a Media Streams message as a string
(`"sequenceNumber": "3"`); both forms are accepted here.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from ringline.contracts.messages import (
    FRAME_BYTES,
    SAMPLE_RATE,
    AudioFrame,
    CallStart,
    Control,
    Playback,
    parse_mark,
)

MULAW_SILENCE = b"\xff"
EXPECTED_ENCODING = "audio/x-mulaw"


class ProtocolError(ValueError):
    """A Media Streams message that cannot be used; `str(err)` says why."""


@dataclass(frozen=True)
class Connected:
    protocol: str = ""
    version: str = ""


@dataclass(frozen=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[str, ...]
    custom_parameters: dict[str, str]
    media_format: dict[str, Any]
    sequence_number: int


@dataclass(frozen=True)
class Media:
    stream_sid: str
    sequence_number: int
    chunk: int
    timestamp: int
    track: str
    payload: bytes = field(repr=False)


@dataclass(frozen=True)
class Mark:
    stream_sid: str
    name: str
    sequence_number: int


@dataclass(frozen=True)
class Dtmf:
    stream_sid: str
    digit: str
    track: str
    sequence_number: int


@dataclass(frozen=True)
class Stop:
    stream_sid: str
    call_sid: str
    account_sid: str
    sequence_number: int


TwilioEvent = Connected | Start | Media | Mark | Dtmf | Stop


# ---------------------------------------------------------------------------------- parsing


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ProtocolError(f"missing or non-object field {key!r}")
    return value


def _str(data: dict[str, Any], key: str, *, required: bool = True) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ProtocolError(f"missing or non-string field {key!r}")
    return value


def _int(data: dict[str, Any], key: str, *, required: bool = True) -> int:
    """A non-negative integer sent as a number or, as Twilio does, as a string of digits."""
    value = data.get(key)
    if value is None and not required:
        return 0
    if isinstance(value, bool):
        raise ProtocolError(f"field {key!r} must be a number, got a boolean")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and value.isdigit() and len(value) <= 18:
        return int(value)
    raise ProtocolError(f"field {key!r} must be a non-negative integer, got {value!r}")


def _check_media_format(fmt: dict[str, Any]) -> None:
    encoding = fmt.get("encoding")
    try:
        rate = int(fmt.get("sampleRate", 0))
        channels = int(fmt.get("channels", 1))
    except (TypeError, ValueError):
        raise ProtocolError(f"unreadable mediaFormat {fmt!r}") from None
    if encoding != EXPECTED_ENCODING or rate != SAMPLE_RATE or channels != 1:
        raise ProtocolError(
            f"unsupported mediaFormat {encoding}/{rate} Hz/{channels} ch; "
            f"only {EXPECTED_ENCODING} {SAMPLE_RATE} Hz mono is supported"
        )


def _parse_start(msg: dict[str, Any], seq: int) -> Start:
    start = _obj(msg, "start")
    fmt = _obj(start, "mediaFormat")
    _check_media_format(fmt)
    tracks = start.get("tracks", ["inbound"])
    if not isinstance(tracks, list) or not all(isinstance(t, str) for t in tracks):
        raise ProtocolError("field 'tracks' must be a list of strings")
    custom = start.get("customParameters") or {}
    if not isinstance(custom, dict):
        raise ProtocolError("field 'customParameters' must be an object")
    return Start(
        stream_sid=_str(start, "streamSid") if "streamSid" in start else _str(msg, "streamSid"),
        call_sid=_str(start, "callSid"),
        account_sid=_str(start, "accountSid", required=False),
        tracks=tuple(tracks),
        custom_parameters={str(k): "" if v is None else str(v) for k, v in custom.items()},
        media_format=dict(fmt),
        sequence_number=seq,
    )


def _parse_media(msg: dict[str, Any], seq: int) -> Media:
    media = _obj(msg, "media")
    raw = _str(media, "payload")
    try:
        payload = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError("media payload is not valid base64") from None
    if not payload:
        raise ProtocolError("empty media payload")
    return Media(
        stream_sid=_str(msg, "streamSid", required=False),
        sequence_number=seq,
        chunk=_int(media, "chunk", required=False),
        timestamp=_int(media, "timestamp", required=False),
        track=_str(media, "track", required=False) or "inbound",
        payload=payload,
    )


def parse_message(text: str | bytes) -> TwilioEvent:
    """One inbound Media Streams message -> a typed event; raises `ProtocolError`."""
    try:
        msg = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"malformed JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise ProtocolError("message is not a JSON object")
    event = msg.get("event")
    if not isinstance(event, str):
        raise ProtocolError("missing field 'event'")
    seq = _int(msg, "sequenceNumber", required=False)
    match event:
        case "connected":
            return Connected(protocol=str(msg.get("protocol", "")), version=str(msg.get("version", "")))
        case "start":
            return _parse_start(msg, seq)
        case "media":
            return _parse_media(msg, seq)
        case "mark":
            return Mark(stream_sid=_str(msg, "streamSid", required=False),
                        name=_str(_obj(msg, "mark"), "name"), sequence_number=seq)
        case "dtmf":
            dtmf = _obj(msg, "dtmf")
            digit = _str(dtmf, "digit")
            if len(digit) != 1 or digit not in "0123456789*#ABCDabcdw":
                raise ProtocolError(f"invalid DTMF digit {digit!r}")
            return Dtmf(stream_sid=_str(msg, "streamSid", required=False), digit=digit,
                        track=_str(dtmf, "track", required=False), sequence_number=seq)
        case "stop":
            raw = msg.get("stop")
            stop: dict[str, Any] = raw if isinstance(raw, dict) else {}
            return Stop(stream_sid=_str(msg, "streamSid", required=False),
                        call_sid=_str(stop, "callSid", required=False),
                        account_sid=_str(stop, "accountSid", required=False), sequence_number=seq)
        case _:
            raise ProtocolError(f"unknown event {event[:40]!r}")


# --------------------------------------------------------------------------------- building


def split_frames(payload: bytes, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Cut mu-law audio into whole frames, padding the last one with mu-law silence."""
    frames = [payload[i:i + frame_bytes] for i in range(0, len(payload), frame_bytes)]
    if frames and len(frames[-1]) < frame_bytes:
        frames[-1] = frames[-1] + MULAW_SILENCE * (frame_bytes - len(frames[-1]))
    return frames


def media_pieces(payload: bytes, frames_per_message: int = 1, frame_bytes: int = FRAME_BYTES) -> list[bytes]:
    """Cut mu-law audio into pieces of up to `frames_per_message` whole frames each, padding the
    last frame with mu-law silence (the piece stays a whole number of frames)."""
    short = -len(payload) % frame_bytes
    if short:
        payload = payload + MULAW_SILENCE * short
    step = frame_bytes * max(1, frames_per_message)
    return [payload[i:i + step] for i in range(0, len(payload), step)]


def _dump(msg: dict[str, Any]) -> str:
    return json.dumps(msg, separators=(",", ":"))


def media_message(stream_sid: str, audio: bytes) -> str:
    """A `media` message of any whole number of frames: Twilio plays them in order, in real time."""
    payload = base64.b64encode(audio).decode("ascii")
    return _dump({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}})


def media_messages(stream_sid: str, payload: bytes) -> list[str]:
    """Agent audio -> one `media` message per 160-byte (20 ms) frame."""
    return [media_message(stream_sid, frame) for frame in split_frames(payload)]


def mark_message(stream_sid: str, name: str) -> str:
    return _dump({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}})


def clear_message(stream_sid: str) -> str:
    return _dump({"event": "clear", "streamSid": stream_sid})


# ------------------------------------------------------------------------------ translation


def to_call_start(start: Start, call_id: str, default_agent: str, started_at: float) -> CallStart:
    custom = start.custom_parameters
    return CallStart(
        call_id=call_id,
        agent_id=custom.get("agent") or default_agent,
        caller=custom.get("caller", ""),
        callee=custom.get("callee", ""),
        direction="outbound" if custom.get("direction") == "outbound" else "inbound",
        stream_sid=start.stream_sid,
        account_sid=start.account_sid,
        custom=dict(custom),
        started_at=started_at,
    )


def to_audio_frame(media: Media, call_id: str, captured_at: float) -> AudioFrame:
    return AudioFrame(call_id=call_id, seq=media.sequence_number, payload=media.payload,
                      captured_at=captured_at)


def to_playback(mark: Mark, call_id: str, heard_at: float, cleared: bool = False) -> Playback:
    """An echoed mark; `cleared` when it came back because a `clear` flushed it unplayed."""
    return Playback(call_id=call_id, mark=mark.name, turn_id=parse_mark(mark.name)[0], heard_at=heard_at,
                    cleared=cleared)


def to_dtmf_control(dtmf: Dtmf, call_id: str, at: float) -> Control:
    return Control(call_id=call_id, action="dtmf", digit=dtmf.digit, at=at)
