"""Printing a simulated call: the conversation, mouth-to-ear per reply and the stage split."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .call import CallResult, TurnResult

STAGES = ("stt", "brain", "tts", "edge")


def _stages(turn: TurnResult) -> str:
    parts = [f"{name} {turn.stages_ms[name]:.0f}" for name in STAGES if name in turn.stages_ms]
    if not parts:
        return ""
    total = turn.stages_ms.get("total")
    return " | " + " · ".join(parts) + (f" = {total:.0f} ms (record)" if total is not None else " ms (record)")


def _line(turn: TurnResult, index: int) -> str:
    if turn.speaker == "caller":
        text = f"caller: {turn.text!r}"
        if turn.heard_as:
            text += f"  (heard as {turn.heard_as!r})"
        return text
    kind = "greeting" if index == 0 and turn.mouth_to_ear_ms is None else "reply"
    text = f"agent : {turn.text!r}" if turn.text else f"agent : [{kind}, {turn.audio_s:.1f} s of audio]"
    if turn.mouth_to_ear_ms is not None:
        text += f"\n          mouth-to-ear {turn.mouth_to_ear_ms:.0f} ms (caller){_stages(turn)}"
    if turn.interrupted:
        text += "  [cleared]"
    if turn.note:
        text += f"  [{turn.note}]"
    return text


def format_result(result: CallResult) -> str:
    seconds = max(0.0, result.ended_at - result.started_at)
    lines = [f"call {result.call_sid}: {seconds:.1f} s, ended by {result.ended_by or '?'}"]
    lines += ["  " + _line(turn, i) for i, turn in enumerate(result.turns)]
    replies = [t.mouth_to_ear_ms for t in result.replies if t.mouth_to_ear_ms is not None]
    if replies:
        lines.append(f"mouth-to-ear over {len(replies)} replies: median {statistics.median(replies):.0f} ms, "
                     f"max {max(replies):.0f} ms")
    if result.agent_wav:
        lines.append(f"agent audio saved to {result.agent_wav}")
    if result.record is None:
        lines.append(f"call record unavailable ({result.record_error or 'not fetched'}): caller-side numbers only")
    for problem in result.problems:
        lines.append(f"problem: {problem}")
    return "\n".join(lines)
