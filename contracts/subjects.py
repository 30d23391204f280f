"""Subject names. Services build subjects only through these functions, never by hand.

Per-call subjects live under `call.<call_id>.`; `*_PATTERN` constants are the FastStream
path-parameter forms (`call.{call_id}.audio.in`) and `*_WILDCARD` the NATS wildcard forms.
"""

from __future__ import annotations

import re

CALLS_START = "calls.start"
CALLS_END = "calls.end"

MEMORY_CALLS_LIST = "memory.calls.list"
MEMORY_CALLS_GET = "memory.calls.get"
MEMORY_SPEND_GET = "memory.spend.get"
MEMORY_VOICEMAIL_LIST = "memory.voicemail.list"  # VoicemailListRequest -> VoicemailListReply
MEMORY_VOICEMAIL_GET = "memory.voicemail.get"  # AudioRequest -> AudioReply (the message as WAV)
MEMORY_RECORDING_GET = "memory.recording.get"  # AudioRequest -> AudioReply (both sides of a call as WAV)
MEMORY_RECALL_GET = "memory.recall.get"  # RecallGetRequest -> RecallGetReply (a caller's memory, per agent)
MEMORY_RECALL_PUT = "memory.recall.put"  # RecallPutRequest (one call's notes) -> RecallPutReply
MEMORY_RECALL_FORGET = "memory.recall.forget"  # RecallForgetRequest -> RecallForgetReply
MEMORY_RECALL_LIST = "memory.recall.list"  # RecallListRequest -> RecallListReply

_TOKEN = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")


class InvalidCallId(ValueError):
    """A call id that cannot be a single NATS subject token."""


def check_call_id(call_id: str) -> str:
    if not _TOKEN.match(call_id or ""):
        raise InvalidCallId(f"call id {call_id!r} must be 1-128 characters of [A-Za-z0-9_-]")
    return call_id


def _call(call_id: str, leaf: str) -> str:
    return f"call.{check_call_id(call_id)}.{leaf}"


def audio_in(call_id: str) -> str:
    return _call(call_id, "audio.in")


def audio_out(call_id: str) -> str:
    return _call(call_id, "audio.out")


def speech(call_id: str) -> str:
    return _call(call_id, "speech")


def transcript(call_id: str) -> str:
    return _call(call_id, "transcript")


def reply(call_id: str) -> str:
    return _call(call_id, "reply")


def playback(call_id: str) -> str:
    return _call(call_id, "playback")


def control(call_id: str) -> str:
    return _call(call_id, "control")


def event(call_id: str) -> str:
    return _call(call_id, "event")


AUDIO_IN_PATTERN = "call.{call_id}.audio.in"
TRANSCRIPT_PATTERN = "call.{call_id}.transcript"
REPLY_PATTERN = "call.{call_id}.reply"
CONTROL_PATTERN = "call.{call_id}.control"
EVENT_PATTERN = "call.{call_id}.event"

ALL_CALL_SUBJECTS_WILDCARD = "call.>"
EVENT_WILDCARD = "call.*.event"
# What the edge's live dashboard and softphone watch on every call (never audio).
TRANSCRIPT_WILDCARD = "call.*.transcript"
REPLY_WILDCARD = "call.*.reply"
SPEECH_WILDCARD = "call.*.speech"
CONTROL_WILDCARD = "call.*.control"
