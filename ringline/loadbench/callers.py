"""Caller processes: each holds a share of the simulated calls at once, paced in real time.

A caller process gets its calls' start offsets (staggered by the bench) and the caller's
utterances, places each call when its time comes, and returns one `CallOutcome` per call plus
the CPU seconds the process spent, so the callers' own load is reported, not hidden.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass, field

from ringline.caller import place_call
from ringline.caller.speech import Utterance


@dataclass
class CallOutcome:
    ok: bool
    problems: list[str] = field(default_factory=list)
    mouth_to_ear_ms: list[float] = field(default_factory=list)  # per answered question
    talked_over: int = 0  # agent audio that began before the caller had finished (not a latency)
    asked: int = 0  # caller turns
    unanswered: int = 0  # caller turns that got no reply
    stalls_ms: list[float] = field(default_factory=list)  # agent audio that came late (hiccups)
    agent_audio_s: float = 0.0
    duration_s: float = 0.0  # the call's length: call-seconds are what a service's CPU is divided by


@dataclass
class CallerJob:
    edge_url: str
    starts_s: list[float]  # each call's start, seconds after `t0`
    t0: float  # wall clock
    utterances: list[Utterance]
    first_number: int  # caller numbers are distinct: the edge limits calls per caller number
    reply_timeout_s: float = 20.0


@dataclass
class CallerReport:
    outcomes: list[CallOutcome]
    cpu_s: float
    rss_mb: float


def outcome_of(result) -> CallOutcome:
    asked = sum(1 for t in result.turns if t.speaker == "caller")
    answered = 0
    for before, turn in zip(result.turns, result.turns[1:], strict=False):
        if before.speaker == "caller" and turn.speaker == "agent":
            answered += 1
    m2e = [t.mouth_to_ear_ms for t in result.replies if t.mouth_to_ear_ms is not None]
    return CallOutcome(
        ok=result.ok, problems=list(result.problems)[:3],
        mouth_to_ear_ms=[m for m in m2e if m > 0], talked_over=sum(1 for m in m2e if m <= 0),
        asked=asked, unanswered=max(0, asked - answered),
        stalls_ms=list(result.audio_stalls_ms), agent_audio_s=result.agent_audio_s,
        duration_s=max(0.0, result.ended_at - result.started_at) if result.started_at else 0.0,
    )


async def _one(job: CallerJob, index: int, start_s: float) -> CallOutcome:
    await asyncio.sleep(max(0.0, job.t0 + start_s - time.time()))
    try:
        result = await place_call(job.edge_url, job.utterances, nats_url=None,
                                  caller=f"+1555{job.first_number + index:07d}",
                                  reply_timeout=job.reply_timeout_s, greeting_timeout=job.reply_timeout_s,
                                  connect_timeout=20.0)
    except Exception as exc:  # place_call reports its own failures; this is a bug in the bench
        return CallOutcome(ok=False, problems=[f"caller crashed: {exc!r}"])
    return outcome_of(result)


async def _run(job: CallerJob) -> list[CallOutcome]:
    return list(await asyncio.gather(*(_one(job, i, s) for i, s in enumerate(job.starts_s))))


def run_callers(job: CallerJob) -> CallerReport:
    """Entry point of one caller process."""
    outcomes = asyncio.run(_run(job))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return CallerReport(outcomes, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
