"""Mouth-to-ear on the whole stack with all three cloud providers, against their doubles.

    .venv/bin/python tests/bench/cloud_bench.py [--calls 3] [--questions 4] [--data-dir .ringline/cloud-bench]

A real nats-server and the five services run as processes (`ringline.stack.Stack`), with
Deepgram, Claude and Cartesia switched on and pointed at the protocol doubles in tests/doubles,
served from threads of this process. A simulated Twilio caller (`ringline.caller`) asks a few
questions per call in real time. The doubles inject the issue's published latencies:

  deepgram   final transcript 250 ms after the end of speech: the double endpoints after 200 ms
             of silence (`RINGLINE_STT_DEEPGRAM_ENDPOINTING_MS=200`) and sends every message 50 ms
             late. (Our production default is 300 ms endpointing: 100 ms more per turn.)
  claude     first token 350 ms after the request, then a text delta (~12 characters) every 15 ms,
             so the reply's first sentence is complete 30 ms after its first token.
  cartesia   first audio 100 ms after a context's first text, then 10x faster than real time.

So 700 ms of every reply is the providers' published latency, 730 ms with Claude's streaming.
Printed: mouth-to-ear p50/p95 as the caller measured it (end of its speech -> first agent audio),
the same minus the injected provider time (the pipeline's own overhead), and the split along each
reply's turn timing (the edge's `turn.first_audio` events, read off the bus): each segment's
p50/p95 with what of it the doubles injected. It asserts nothing about times; it fails (exit 1)
only when a reply was not served by the three cloud providers or a call went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def load_doubles() -> None:
    """Register tests/doubles as the package `doubles` (and put nothing else of tests/ on the path)."""
    if "doubles" in sys.modules:
        return
    folder = Path(__file__).resolve().parents[1] / "doubles"
    spec = importlib.util.spec_from_file_location("doubles", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["doubles"] = module
    spec.loader.exec_module(module)


load_doubles()

from ringline.caller import CallResult, place_call  # noqa: E402
from ringline.caller.report import format_result  # noqa: E402
from ringline.caller.speech import load_synth, say  # noqa: E402
from ringline.contracts import subjects  # noqa: E402
from ringline.contracts.codec import unpack  # noqa: E402
from ringline.contracts.events import TURN_FIRST_AUDIO  # noqa: E402
from ringline.contracts.messages import TurnTiming  # noqa: E402
from ringline.stack import Stack  # noqa: E402

from doubles import (  # noqa: E402
    AnthropicDouble,
    AnthropicFaults,
    CartesiaDouble,
    CartesiaFaults,
    DeepgramDouble,
    DeepgramFaults,
    InThread,
)
from doubles.anthropic import text_pieces  # noqa: E402

DEEPGRAM_ENDPOINTING_MS, DEEPGRAM_LATENCY_MS = 200, 50
CLAUDE_FIRST_TOKEN_MS, CLAUDE_TOKEN_MS = 350, 15
CARTESIA_FIRST_AUDIO_MS = 100
PUBLISHED_MS = DEEPGRAM_ENDPOINTING_MS + DEEPGRAM_LATENCY_MS + CLAUDE_FIRST_TOKEN_MS + CARTESIA_FIRST_AUDIO_MS

QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "How do I boil an egg?",
    "What is two plus two?",
    "What's the tallest mountain in the world?",
    "Give me one tip for a job interview.",
)
REPLY = "Happy to help with that. Here is the short answer you asked for."


def deltas_to_first_sentence(text: str) -> int:
    """Text deltas the double streams before the reply's first sentence is complete (its end and
    the space after it): the brain's first chunk cannot go out sooner."""
    pieces = text_pieces(text)
    for count in range(1, len(pieces) + 1):
        if re.search(r"[.!?]\s", "".join(pieces[:count])):
            return count
    return len(pieces)


STREAMING_MS = (deltas_to_first_sentence(REPLY) - 1) * CLAUDE_TOKEN_MS
INJECTED_MS = PUBLISHED_MS + STREAMING_MS

# Segments of a reply's turn timing, in order, with the provider time the doubles put in each.
# (The record's end of speech is the STT's, from the frames' capture stamps: within a frame or so
# of the caller's own, which the caller-side mouth-to-ear above starts from.)
SEGMENTS = (
    ("stt: end of speech -> transcript", "speech_ended_at", "transcript_at",
     DEEPGRAM_ENDPOINTING_MS + DEEPGRAM_LATENCY_MS),
    ("brain: transcript -> llm request", "transcript_at", "llm_started_at", 0),
    ("brain: llm request -> first token", "llm_started_at", "first_token_at", CLAUDE_FIRST_TOKEN_MS),
    ("brain: first token -> first chunk", "first_token_at", "first_chunk_at", STREAMING_MS),
    ("tts: first chunk -> synthesis start", "first_chunk_at", "tts_started_at", 0),
    ("tts: synthesis start -> first audio", "tts_started_at", "first_audio_at", CARTESIA_FIRST_AUDIO_MS),
    ("edge: first audio -> sent to caller", "first_audio_at", "edge_sent_at", 0),
)


@dataclass
class Reply:
    mouth_to_ear_ms: float
    timing: TurnTiming | None
    providers: dict[str, str] = field(default_factory=dict)
    speech_end_at: float = 0.0  # the caller's own clock: last frame with speech in it sent
    heard_at: float = 0.0  # ... and the reply's first audio received


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def call_and_listen(stack: Stack, utterances: list[Any]) -> tuple[CallResult, dict[str, TurnTiming]]:
    """Place one call; meanwhile collect each agent turn's full timing from the edge's
    `turn.first_audio` events on the bus (the call record keeps only the per-stage sums)."""
    import nats

    timings: dict[str, TurnTiming] = {}

    async def on_event(msg: Any) -> None:
        event = unpack(msg.data)
        if isinstance(event, dict) and event.get("name") == TURN_FIRST_AUDIO and event.get("timing"):
            timings.setdefault(event.get("turn_id", ""), TurnTiming.model_validate(event["timing"]))

    bus = await nats.connect(stack.url)
    try:
        await bus.subscribe(subjects.EVENT_WILDCARD, cb=on_event)
        result = await place_call(stack.edge_url, utterances, nats_url=stack.url, record_timeout=10)
    finally:
        await bus.close()
    return result, timings


def replies_of(result: CallResult, timings: dict[str, TurnTiming]) -> list[Reply]:
    """The caller's mouth-to-ear per reply, with that turn's timing and providers."""
    out = []
    for before, turn in itertools.pairwise(result.turns):
        if turn not in result.replies or before.speaker != "caller":
            continue
        turn_id = next((t for t in turn.turn_ids if t in timings), "")
        timing = timings.get(turn_id)
        providers = {"stt": timing.stt_provider, "llm": timing.llm_provider, "tts": timing.tts_provider} \
            if timing is not None else {}
        out.append(Reply(turn.mouth_to_ear_ms or 0.0, timing, providers, before.ended_at, turn.started_at))
    return out


def summary(replies: list[Reply]) -> str:
    m2e = [r.mouth_to_ear_ms for r in replies]
    over = [m - INJECTED_MS for m in m2e]
    lines = [
        f"{len(replies)} replies",
        f"mouth-to-ear (caller)                       p50 {pct(m2e, .5):5.0f} ms  p95 {pct(m2e, .95):5.0f} ms"
        "   (target: p50 <= 700 ms)",
        f"  - published provider latencies            {PUBLISHED_MS:5.0f} ms  (deepgram final "
        f"{DEEPGRAM_ENDPOINTING_MS + DEEPGRAM_LATENCY_MS}, claude first token {CLAUDE_FIRST_TOKEN_MS}, "
        f"cartesia first audio {CARTESIA_FIRST_AUDIO_MS})",
        f"  - claude streaming to the first sentence  {STREAMING_MS:5.0f} ms  "
        f"({deltas_to_first_sentence(REPLY) - 1} more text deltas at {CLAUDE_TOKEN_MS} ms)",
        f"  = pipeline overhead                       p50 {pct(over, .5):5.0f} ms  p95 {pct(over, .95):5.0f} ms",
        "",
        f"{'call record segment':<38} {'p50':>6} {'p95':>6} {'injected':>9} {'overhead p50':>13}",
    ]
    timed = [r.timing for r in replies if r.timing is not None]
    for label, start, end, injected in SEGMENTS:
        values = [(getattr(t, end) - getattr(t, start)) * 1000 for t in timed if getattr(t, start) and getattr(t, end)]
        if values:
            lines.append(f"{label:<38} {pct(values, .5):6.0f} {pct(values, .95):6.0f} {injected:9.0f} "
                         f"{pct(values, .5) - injected:13.0f}")
    totals = [(t.edge_sent_at - t.speech_ended_at) * 1000 for t in timed if t.edge_sent_at and t.speech_ended_at]
    if totals:
        lines.append(f"{'record total (end of speech -> edge)':<38} {pct(totals, .5):6.0f} {pct(totals, .95):6.0f} "
                     f"{INJECTED_MS:9.0f} {pct(totals, .5) - INJECTED_MS:13.0f}")
    both = [r for r in replies if r.timing is not None and r.speech_end_at and r.heard_at]
    if both:
        late = [(r.timing.speech_ended_at - r.speech_end_at) * 1000 for r in both if r.timing]
        wire = [(r.heard_at - r.timing.edge_sent_at) * 1000 for r in both if r.timing]
        lines.append(f"caller vs record: the record's end of speech is p50 {pct(late, .5):.0f} ms after the caller's; "
                     f"edge -> caller's ear p50 {pct(wire, .5):.0f} ms")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    questions = [QUESTIONS[(c * args.questions + k) % len(QUESTIONS)]
                 for c in range(args.calls) for k in range(args.questions)]
    deepgram = DeepgramDouble(script=questions, faults=DeepgramFaults(latency_ms=DEEPGRAM_LATENCY_MS))
    claude = AnthropicDouble(default_reply=REPLY,
                             faults=AnthropicFaults(first_token_ms=CLAUDE_FIRST_TOKEN_MS, token_ms=CLAUDE_TOKEN_MS))
    cartesia = CartesiaDouble(faults=CartesiaFaults(first_audio_ms=CARTESIA_FIRST_AUDIO_MS))
    results: list[CallResult] = []
    replies: list[Reply] = []
    with InThread(deepgram) as dg, InThread(claude) as api, InThread(cartesia) as ct:
        env = {
            "RINGLINE_STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": "bench",
            "RINGLINE_STT_DEEPGRAM_BASE_URL": dg.double.ws_url,
            "RINGLINE_STT_DEEPGRAM_ENDPOINTING_MS": str(DEEPGRAM_ENDPOINTING_MS),
            "ANTHROPIC_API_KEY": "bench", "RINGLINE_BRAIN_ANTHROPIC_BASE_URL": api.double.url,
            "CARTESIA_API_KEY": "bench", "RINGLINE_TTS_CARTESIA_WEBSOCKET_URL": ct.double.ws_url,
            "RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "true" if args.preemptive else "false",
        }
        stack = Stack.on_free_ports(data_dir=Path(args.data_dir), quiet=True, env=env)
        started = time.monotonic()
        print(f"starting nats-server and the five services (logs in {stack.data_dir / 'logs'}) ...", flush=True)
        stack.start(timeout=300)
        print(f"up in {time.monotonic() - started:.1f} s", flush=True)
        try:
            voice = load_synth(threads=1)
            for index in range(args.calls):
                asked = questions[index * args.questions:(index + 1) * args.questions]
                result, timings = asyncio.run(call_and_listen(stack, [say(voice, q) for q in asked]))
                results.append(result)
                replies += replies_of(result, timings)
                if args.verbose or not result.ok:
                    print(format_result(result))
                print(f"call {index + 1}/{args.calls}: mouth-to-ear "
                      + ", ".join(f"{t.mouth_to_ear_ms:.0f}" for t in result.replies if t.mouth_to_ear_ms)
                      + " ms", flush=True)
        finally:
            stack.stop()
    if not replies:
        print("no replies measured")
        return 1
    print()
    print(summary(replies))
    served = {(r.providers.get("stt", "?"), r.providers.get("llm", "?"), r.providers.get("tts", "?")) for r in replies}
    print(f"providers (stt, llm, tts) per reply: {sorted(served)}")
    problems = [p for r in results for p in r.problems]
    off_cloud = [s for s in served if not (s[0].startswith("deepgram") and s[1] == "anthropic" and s[2] == "cartesia")]
    if problems or off_cloud:
        print(f"NOT a clean cloud run: problems {problems}, replies off the cloud providers {off_cloud}")
        return 1
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--questions", type=int, default=4, help="questions per call")
    parser.add_argument("--data-dir", default=".ringline/cloud-bench")
    parser.add_argument("--preemptive", action="store_true",
                        help="start Claude on Deepgram's interim transcript (RINGLINE_BRAIN_PREEMPTIVE_GENERATION)")
    parser.add_argument("--verbose", action="store_true", help="print every call's transcript")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
