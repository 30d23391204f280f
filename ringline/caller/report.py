"""Printing a simulated call: the conversation, mouth-to-ear per reply and the stage split, and
what each scenario step meant for the caller (barge-in, backchannels, pauses, hang-up)."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .results import CallResult, StepResult, TurnResult

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
    elif turn.paused:
        text += f"  [paused {turn.paused}x, went on]"
    if turn.note:
        text += f"  [{turn.note}]"
    return text


def _ms(value: float | None) -> str:
    return f"{value:.0f} ms" if value is not None else "-"


def format_step(step: StepResult) -> str:
    """One line per scenario step: what the caller did and what it experienced."""
    text = f"step {step.index} {step.kind}: {step.label!r}"
    if step.kind in ("interrupt", "backchannel") and step.reply_started_at and step.acted_at:
        text += f" ({(step.acted_at - step.reply_started_at) * 1000:.0f} ms into the reply)"
    verdicts = []
    if step.kind == "interrupt" and step.clear_received is not None:
        if step.clear_received:
            verdicts.append(f"clear after {_ms(step.barge_in_ms)} (barge-in reaction)")
            leaked = step.audio_after_clear_ms or 0.0
            verdicts.append(f"{leaked:.0f} ms of the interrupted turn after the clear" if leaked
                            else "nothing of the interrupted turn after the clear")
        else:
            verdicts.append("NO clear: the agent talked on")
    if step.kind == "backchannel" and step.clear_received is not None:
        voiced = f"{step.voiced_ms:.0f} ms voiced, " if step.voiced_ms is not None else ""
        if not step.clear_received:
            verdicts.append(voiced + "no clear: agent kept talking")
        elif step.agent_stopped:
            verdicts.append(voiced + "it STOPPED the agent (clear, never came back)")
        else:
            verdicts.append(voiced + f"the agent paused {_ms(step.paused_ms)} (clear), then went on")
    if step.false_cutoff is not None:
        verdicts.append("FALSE CUT-OFF" if step.false_cutoff else "not cut off during the pause")
    if step.agent_hung_up is not None:
        verdicts.append("the agent hung up" if step.agent_hung_up else "the agent did NOT hang up")
    if step.note:
        verdicts.append(step.note)
    return text + (": " + "; ".join(verdicts) if verdicts else "")


def format_result(result: CallResult) -> str:
    seconds = max(0.0, result.ended_at - result.started_at)
    lines = [f"call {result.call_sid}: {seconds:.1f} s, ended by {result.ended_by or '?'}"]
    lines += ["  " + _line(turn, i) for i, turn in enumerate(result.turns)]
    replies = [t.mouth_to_ear_ms for t in result.replies if t.mouth_to_ear_ms is not None]
    if replies:
        lines.append(f"mouth-to-ear over {len(replies)} replies: median {statistics.median(replies):.0f} ms, "
                     f"max {max(replies):.0f} ms")
    lines += ["  " + format_step(step) for step in result.steps if step.kind != "say" or step.pauses]
    if result.hung_up_after_goodbye is not None:
        lines.append("the agent hung up " + ("after its goodbye had played" if result.hung_up_after_goodbye else
                                             f"BEFORE its goodbye had played ({_ms(result.unplayed_at_hangup_ms)} "
                                             "unplayed or marks not echoed)"))
    for drop in result.reconnects:
        if drop.reconnected_at is not None:
            lines.append(f"the stream dropped ({drop.close_code} {drop.close_reason}): reconnected through the "
                         f"action URL in {_ms(drop.reconnect_ms)}, agent audio gap {_ms(drop.gap_ms)}")
        elif drop.error:
            lines.append(f"the stream dropped ({drop.close_code}): NOT reconnected: {drop.error}")
    if result.agent_wav:
        lines.append(f"agent audio saved to {result.agent_wav}")
    if result.record is None:
        lines.append(f"call record unavailable ({result.record_error or 'not fetched'}): caller-side numbers only")
    for problem in result.problems:
        lines.append(f"problem: {problem}")
    return "\n".join(lines)
