"""Line the caller's own view of the call up with the memory service's call record."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ringline.contracts.messages import CallRecord, TurnRecord, TurnTiming

if TYPE_CHECKING:
    from .results import TurnResult


def _stages_from_events(record: CallRecord, turn_ids: list[str]) -> dict[str, float]:
    """Stage split from the edge's `turn.first_audio` events, when the turn record has none."""
    for event in record.events:
        if not isinstance(event, dict) or event.get("turn_id") not in turn_ids:
            continue
        timing: Any = event.get("timing")
        if event.get("name") == "turn.first_audio" and isinstance(timing, dict):
            try:
                return TurnTiming.model_validate(timing).stages_ms()
            except ValueError:
                continue
    return {}


def _agent_records(record: CallRecord, turn_ids: list[str]) -> list[TurnRecord]:
    found = [record.turn(turn_id) for turn_id in turn_ids]
    return [t for t in found if t is not None and t.speaker == "agent"]


def merge_record(turns: list[TurnResult], record: CallRecord) -> None:
    """Fill in agent text, stage latencies and what speech-to-text heard, in place."""
    agent_records = [t for t in record.turns if t.speaker == "agent"]
    caller_records = [t for t in record.turns if t.speaker == "caller"]
    use_order = not any(t.turn_ids for t in turns if t.speaker == "agent")
    agent_index = 0
    for i, turn in enumerate(turns):
        if turn.speaker != "agent":
            continue
        if use_order:  # no marks came back: pair agent turns by their order
            records = agent_records[agent_index:agent_index + 1]
            agent_index += 1
        else:
            records = _agent_records(record, turn.turn_ids)
        if not records:
            continue
        turn.text = " ".join(r.text.strip() for r in records if r.text.strip())
        turn.stages_ms = next((dict(r.latency_ms) for r in records if r.latency_ms), {}) or \
            _stages_from_events(record, [r.turn_id for r in records])
        asked = next((r.in_reply_to for r in records if r.in_reply_to), "")
        said = record.turn(asked) if asked else None
        if said is not None and i > 0 and turns[i - 1].speaker == "caller":
            turns[i - 1].heard_as = said.text
            turns[i - 1].turn_ids = [said.turn_id]
    # caller turns without a reply link: pair by time, then by order
    for turn in turns:
        if turn.speaker != "caller" or turn.heard_as:
            continue
        match = next((c for c in caller_records if c.turn_id not in _claimed(turns)
                      and c.started_at and turn.started_at - 1.0 <= c.started_at <= turn.ended_at + 5.0), None)
        if match is not None:
            turn.heard_as, turn.turn_ids = match.text, [match.turn_id]


def _claimed(turns: list[TurnResult]) -> set[str]:
    return {tid for t in turns if t.speaker == "caller" for tid in t.turn_ids}
