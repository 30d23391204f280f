"""A call record as the dashboard's call page draws it: turns, a latency waterfall per agent turn
(STT, brain, TTS, edge, back to back, as they add up to mouth-to-ear), what went wrong or
changed hands on the way (barge-ins, pauses, fallbacks, takeovers), and cost. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from ringline.contracts.events import CALL_TRANSFER, EDGE_TAKEOVER
from ringline.contracts.messages import CallRecord, TurnRecord

STAGES = ("stt", "brain", "tts", "edge")


def is_takeover(event: dict[str, Any]) -> bool:
    """`edge.takeover`, `stage.takeover`: a replica carried the call on after another one."""
    return str(event.get("name", "")).endswith(".takeover")


def is_call_mark(event: dict[str, Any]) -> bool:
    return is_takeover(event) or event.get("name") in (CALL_TRANSFER, "call.hold")


def trace_url(jaeger_ui_url: str | None, trace_id: str) -> str:
    return f"{jaeger_ui_url.rstrip('/')}/trace/{trace_id}" if jaeger_ui_url and trace_id else ""


def waterfall(latency_ms: dict[str, float]) -> list[dict[str, Any]]:
    """Stage bars laid end to end from the caller's last word: [{stage, start_ms, ms}]."""
    bars, at = [], 0.0
    for stage in STAGES:
        ms = latency_ms.get(stage)
        if ms is None:
            continue
        bars.append({"stage": stage, "start_ms": round(at, 1), "ms": round(ms, 1)})
        at += max(ms, 0.0)
    return bars


def _stage(event_name: str) -> str:
    return "llm" if event_name in ("turn.llm", "llm.usage") else event_name.split(".")[0]


def _fallbacks(events: list[dict[str, Any]]) -> list[str]:
    """What one turn's events say fell back: `*.fallback` events and `fallbacks` lists
    (`{"from", "to", "reason"}`, as the brain's `turn.llm` and the TTS stage's `tts.turn` carry)."""
    found: list[str] = []
    for event in events:
        name, stage = str(event.get("name", "")), _stage(str(event.get("name", "")))
        if name.endswith(".fallback"):
            found.append(f"{stage}: {event.get('to') or event.get('reason') or 'fell back'}")
        fallbacks = event.get("fallbacks")
        for item in fallbacks if isinstance(fallbacks, list) else []:
            if isinstance(item, dict):
                hop = " -> ".join(str(item[k]) for k in ("from", "to") if item.get(k)) or "fell back"
                found.append(f"{stage}: {hop}" + (f" ({item['reason']})" if item.get("reason") else ""))
            else:
                found.append(f"{stage}: {item}")
    return found


def _marks(turn: TurnRecord, events: list[dict[str, Any]], takeovers: list[dict[str, Any]]) -> list[dict[str, str]]:
    marks: list[dict[str, str]] = []
    if turn.interrupted:
        reaction = turn.latency_ms.get("barge_in_reaction")
        marks.append({"kind": "barge-in", "label": "barge-in" + (f" ({reaction:.0f} ms)" if reaction else "")})
    if turn.resumed:
        marks.append({"kind": "paused", "label": f"paused {turn.resumed}x, went on"})
    marks += [{"kind": "fallback", "label": label} for label in _fallbacks(events)]
    for event in takeovers:
        who = event.get("stage") or ("edge" if event.get("name") == EDGE_TAKEOVER else "?")
        marks.append({"kind": "takeover", "label": f"takeover: {who}"})
    return marks


def turn_view(turn: TurnRecord, call_start: float, events: list[dict[str, Any]],
              takeovers: list[dict[str, Any]]) -> dict[str, Any]:
    cost = turn.cost or {}
    return {
        "turn_id": turn.turn_id, "speaker": turn.speaker, "kind": turn.kind, "text": turn.text,
        "at_s": round(turn.started_at - call_start, 2) if turn.started_at and call_start else None,
        "interrupted": turn.interrupted, "heard_text": turn.heard_text, "resumed": turn.resumed,
        "providers": turn.providers, "latency_ms": turn.latency_ms,
        "total_ms": turn.latency_ms.get("total") if turn.speaker == "agent" else None,
        "waterfall": waterfall(turn.latency_ms) if turn.speaker == "agent" else [],
        "marks": _marks(turn, events, takeovers),
        "cost": float(cost.get("total", 0.0)), "cost_detail": {k: cost[k] for k in ("stt", "llm", "tts") if k in cost},
    }


def call_view(record: CallRecord, jaeger_ui_url: str | None = None) -> dict[str, Any]:
    by_turn: dict[str, list[dict[str, Any]]] = {}
    for event in record.events:
        by_turn.setdefault(str(event.get("turn_id", "")), []).append(event)
    call_marks = [e for e in record.events if is_call_mark(e)]
    agent_turns = [t for t in record.turns if t.speaker == "agent" and t.started_at]
    # A takeover shows on the first agent turn that began after it: the turn it may have slowed.
    takeovers: dict[str, list[dict[str, Any]]] = {}
    for event in filter(is_takeover, call_marks):
        turn = next((t for t in agent_turns if t.started_at >= float(event.get("at", 0.0))), None)
        if turn is not None:
            takeovers.setdefault(turn.turn_id, []).append(event)
    totals = [t.latency_ms["total"] for t in record.turns if t.speaker == "agent" and "total" in t.latency_ms]
    voicemail = record.voicemail
    return {
        "call": {
            "call_id": record.call_id, "agent_id": record.agent_id, "caller": record.caller, "callee": record.callee,
            "direction": record.direction, "started_at": record.started_at, "ended_at": record.ended_at,
            "duration_s": round(record.ended_at - record.started_at, 1) if record.ended_at else None,
            "end_reason": record.end_reason, "trace_id": record.trace_id,
            "trace_url": trace_url(jaeger_ui_url, record.trace_id),
            "cost": float(record.cost.get("total", 0.0)), "currency": record.cost.get("currency", "USD"),
            "cost_detail": {k: record.cost[k] for k in ("stt", "llm", "tts") if k in record.cost},
            "median_total_ms": sorted(totals)[len(totals) // 2] if totals else None,
            "voicemail": None if voicemail is None else {
                "reason": voicemail.reason, "text": voicemail.text,
                "duration_s": voicemail.duration_s or voicemail.audio_s, "has_audio": bool(voicemail.audio_key)},
            "summary": record.summary.text if record.summary else "",
            "transfer": record.transfer.model_dump() if record.transfer else None,
        },
        "turns": [turn_view(t, record.started_at, by_turn.get(t.turn_id, []), takeovers.get(t.turn_id, []))
                  for t in record.turns],
        "marks": [{"name": e.get("name"), "at_s": round(float(e.get("at", 0.0)) - record.started_at, 2),
                   "stage": e.get("stage", ""), "detail": e.get("reason") or e.get("target") or ""}
                  for e in call_marks],
    }
