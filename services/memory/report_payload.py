"""The JSON body of a call report, built from the call record. Pure: no I/O."""

from __future__ import annotations

import json
from typing import Any

from ringline.contracts.messages.records import CallRecord

REPORT_TYPE = "call.report"
REPORT_VERSION = 1


def outcome(record: CallRecord) -> str:
    """voicemail, transferred or completed; the end reason says more."""
    if record.voicemail is not None:
        return "voicemail"
    if record.transfer is not None and record.transfer.outcome == "transferred":
        return "transferred"
    return "completed"


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(record: CallRecord) -> dict[str, Any]:
    totals = [t.latency_ms["total"] for t in record.turns if t.speaker == "agent" and "total" in t.latency_ms]
    return {
        "type": REPORT_TYPE,
        "v": REPORT_VERSION,
        "call_id": record.call_id,
        "agent_id": record.agent_id,
        "caller": record.caller,
        "callee": record.callee,
        "direction": record.direction,
        "started_at": record.started_at,
        "ended_at": record.ended_at,
        "duration_s": round(record.ended_at - record.started_at, 3) if record.ended_at else None,
        "outcome": outcome(record),
        "end_reason": record.end_reason,
        "summary": record.summary.text if record.summary else None,
        "facts": record.summary.facts if record.summary else None,
        "transcript": [
            {
                "turn_id": t.turn_id,
                "speaker": t.speaker,
                "text": t.text,
                "started_at": t.started_at,
                "ended_at": t.ended_at,
                "interrupted": t.interrupted,
                "heard_text": t.heard_text,
                "latency_ms": t.latency_ms,
                "providers": t.providers,
                "cost": t.cost,
            }
            for t in record.turns
        ],
        "mouth_to_ear_ms": {"turns": len(totals), "p50": _percentile(totals, 0.5), "p95": _percentile(totals, 0.95),
                            "max": max(totals) if totals else None},
        "cost": record.cost,
        "voicemail": record.voicemail.model_dump() if record.voicemail else None,
        "transfer": record.transfer.model_dump() if record.transfer else None,
    }


def report_body(record: CallRecord) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(report(record), separators=(",", ":"), ensure_ascii=False, default=str).encode()
