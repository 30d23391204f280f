"""Operator-side access to call records over NATS request/reply (`memory.*`)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import cast

import nats

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack, unpack
from ringline.contracts.messages import (
    CallGetReply,
    CallGetRequest,
    CallListRequest,
    CallRecord,
    CallSummary,
)

from .nats_config import connect_client, safe_url


class MemoryUnavailable(RuntimeError):
    """No memory service answered."""


async def memory_request(nats_url: str, subject: str, payload: bytes, timeout: float) -> object:
    try:
        nc = await connect_client(nats_url)
    except Exception as exc:
        raise MemoryUnavailable(f"cannot reach NATS at {safe_url(nats_url)}: {exc}") from exc
    try:
        reply = await nc.request(subject, payload, timeout=timeout, headers={"content-type": CONTENT_TYPE})
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
        raise MemoryUnavailable(f"the memory service did not answer on {subject}") from exc
    finally:
        await nc.close()
    return unpack(reply.data)


async def list_calls(nats_url: str, limit: int = 20, timeout: float = 5.0) -> list[CallSummary]:
    data = await memory_request(nats_url, subjects.MEMORY_CALLS_LIST, pack(CallListRequest(limit=limit)), timeout)
    return [CallSummary.model_validate(item) for item in cast("list[object]", data)]  # memory replies with a list


async def get_call(nats_url: str, call_id: str, timeout: float = 5.0) -> CallRecord | None:
    data = await memory_request(nats_url, subjects.MEMORY_CALLS_GET, pack(CallGetRequest(call_id=call_id)), timeout)
    reply = CallGetReply.model_validate(data)
    return reply.record if reply.found else None


async def wait_for_ended(nats_url: str, call_id: str, timeout: float = 5.0) -> CallRecord | None:
    """The record once the memory service has closed it (or the latest one at the timeout)."""
    deadline = asyncio.get_running_loop().time() + timeout
    record = None
    while True:
        with contextlib.suppress(MemoryUnavailable):  # keep the last record seen
            record = await get_call(nats_url, call_id)
        if record is not None and record.ended_at:
            return record
        if asyncio.get_running_loop().time() > deadline:
            return record
        await asyncio.sleep(0.2)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def format_summaries(calls: list[CallSummary]) -> str:
    if not calls:
        return "no calls recorded yet"
    lines = [f"{'CALL':<36} {'STARTED':<19} {'SECS':>5} {'TURNS':>5}  {'AGENT':<10} {'CALLER':<14} END"]
    for c in calls:
        secs = f"{c.ended_at - c.started_at:.0f}" if c.ended_at else "live"
        lines.append(f"{c.call_id:<36} {_clock(c.started_at):<19} {secs:>5} {c.turns:>5}  "
                     f"{c.agent_id:<10} {c.caller or '-':<14} {c.end_reason or '-'}")
    return "\n".join(lines)


def format_latency(latency_ms: dict[str, float]) -> str:
    if not latency_ms:
        return ""
    total = latency_ms.get("total")
    parts = " ".join(f"{k} {v:.0f}" for k, v in latency_ms.items() if k not in ("total", "barge_in_reaction"))
    return f"[mouth-to-ear {total:.0f} ms: {parts}]" if total is not None else f"[{parts} ms]"


def format_record(record: CallRecord) -> str:
    duration = f"{record.ended_at - record.started_at:.1f} s" if record.ended_at else "in progress"
    lines = [
        f"call {record.call_id}  agent {record.agent_id}  caller {record.caller or '-'}  "
        f"{_clock(record.started_at)}  {duration}  {record.end_reason}",
    ]
    for turn in record.turns:
        who = "caller" if turn.speaker == "caller" else "agent "
        latency = format_latency(turn.latency_ms) if turn.speaker == "agent" else ""
        line = f"  {who}: {turn.text or '(nothing)'}  {latency}".rstrip()
        if turn.interrupted:
            line += f"\n          [interrupted; the caller heard: {turn.heard_text or '(nothing)'!r}]"
        elif turn.resumed:
            line += f"\n          [paused by the caller {turn.resumed}x, then went on]"
        lines.append(line)
    if record.replicas:
        served = ", ".join(f"{stage} {replica}" for stage, replica in sorted(record.replicas.items()))
        lines.append(f"  served by: {served}")
    for event in record.events:
        if event.get("name") == "stage.takeover":
            moved = f"{event.get('stage')} {event.get('previous', '?')} -> {event.get('replica', '?')}"
            lines.append(f"  takeover: {moved} at {_clock(float(event.get('at', 0.0)))}"
                         f" (last checkpoint {event.get('gap_s', '?')} s before)")
        elif event.get("name") in ("stage.released", "call.hold", "edge.takeover", "edge.handover"):
            lines.append(f"  {event.get('name')}: {event.get('stage', '')} {event.get('replica', '')}"
                         f" {event.get('reason', '')}".rstrip())
    return "\n".join(lines)
