"""Voicemail messages, read from the call records. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Iterable

from ringline.contracts.messages.records import CallRecord
from ringline.contracts.messages.voicemail import VoicemailListRequest, VoicemailSummary


def voicemail_summary(record: CallRecord) -> VoicemailSummary | None:
    message = record.voicemail
    if message is None:
        return None
    return VoicemailSummary(
        call_id=record.call_id,
        agent_id=record.agent_id,
        caller=record.caller,
        reason=message.reason,
        taken_at=message.taken_at or record.ended_at or message.started_at,
        duration_s=message.duration_s or message.audio_s,
        text=message.text,
        has_audio=bool(message.audio_key),
    )


def voicemail_list(records: Iterable[CallRecord], request: VoicemailListRequest) -> list[VoicemailSummary]:
    """The messages, newest first, optionally of one agent only."""
    found = [s for r in records if (s := voicemail_summary(r)) is not None]
    if request.agent_id:
        found = [s for s in found if s.agent_id == request.agent_id]
    found.sort(key=lambda s: s.taken_at, reverse=True)
    return found[:request.limit]
