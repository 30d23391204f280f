"""`ringline demo` and `ringline bench`: the whole stack on this machine plus simulated calls."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from .caller import CallResult, place_call
from .caller.report import format_result
from .caller.speech import load_synth, say
from .stack import Stack, StackError

DEMO_QUESTIONS = (
    "Hello! What is the capital of Italy?",  # Whisper tiny hears this voice's "France" as "friends"
    "Great, thanks. Can you give me a short tip for sleeping better?",
)

BENCH_QUESTIONS = (
    "What is the capital of Italy?",
    "How many days are there in a week?",
    "Can you recommend a good book for a long flight?",
    "What's a quick idea for dinner tonight?",
    "How do I boil an egg?",
    "What colour is the sky on a clear day?",
    "Give me one tip for a job interview.",
    "What is two plus two?",
    "What should I pack for a weekend at the beach?",
    "Is it better to walk or run for exercise?",
    "What's the tallest mountain in the world?",
    "Tell me a fun fact about octopuses.",
)


def _start(stack: Stack) -> None:
    started = time.monotonic()
    print(f"starting nats-server and the five services (logs in {stack.data_dir / 'logs'}) ...", flush=True)
    stack.start(timeout=300)
    print(f"up in {time.monotonic() - started:.1f} s; edge at {stack.edge_url}", flush=True)


def run_demo(args: argparse.Namespace) -> int:
    questions = args.say or list(DEMO_QUESTIONS)
    stack = Stack.on_free_ports(data_dir=Path(args.data_dir), quiet=True)
    try:
        _start(stack)
        synth = load_synth()
        utterances = [say(synth, text) for text in questions]
        print(f"calling {stack.edge_url}/twilio/voice as a Twilio Media Stream ...\n", flush=True)
        result = asyncio.run(place_call(stack.edge_url, utterances, out=args.out, nats_url=stack.url))
    except StackError as exc:
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()
    print(format_result(result))
    return 0 if result.ok and len(result.replies) == len(questions) else 1


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def mouth_to_ear(results: list[CallResult]) -> tuple[list[float], int]:
    """Each reply's mouth-to-ear, and how many replies began before the caller had finished (the
    agent talked over a pause in the question: a false end of turn, not a fast answer)."""
    values = [t.mouth_to_ear_ms for r in results for t in r.replies if t.mouth_to_ear_ms is not None]
    return [v for v in values if v > 0], sum(1 for v in values if v <= 0)


def summarize(results: list[CallResult]) -> str:
    replies = [turn for result in results for turn in result.replies]
    if not replies:
        return "no replies measured"
    lines = [f"{len(replies)} replies over {len(results)} calls"]
    answered, early = mouth_to_ear(results)
    rows = [("mouth-to-ear (caller)", answered)]
    for stage in ("stt", "brain", "tts", "edge", "total"):
        values = [t.stages_ms[stage] for t in replies if stage in t.stages_ms]
        rows.append((f"  {stage} (record)", values))
    lines.append(f"{'':<24} {'p50':>8} {'p95':>8} {'mean':>8} {'n':>4}")
    for name, values in rows:
        if values:
            lines.append(f"{name:<24} {_percentile(values, 50):>8.0f} {_percentile(values, 95):>8.0f} "
                         f"{statistics.fmean(values):>8.0f} {len(values):>4}")
    if early:
        lines.append(f"{early} repl{'y' if early == 1 else 'ies'} began before the caller had finished "
                     "(left out of mouth-to-ear)")
    problems = [p for r in results for p in r.problems]
    if problems:
        lines.append(f"problems: {problems}")
    return "\n".join(lines)


def _settings(pairs: list[str] | None, compare: str | None) -> list[tuple[str, dict[str, str]]]:
    """The stacks to bench: the defaults (plus `--env`), and with `--compare KEY=VALUE,...` also
    the old behaviour (those settings on top), benched call by call beside the new; `--compare`
    is read as the load bench reads it (`loadbench.run.variants`)."""
    from .loadbench.run import variants

    env = dict(kv.split("=", 1) for kv in pairs or [])
    return [(label.strip("[] ") or "new", env | overrides) for label, overrides in variants(compare)]


def run_bench(args: argparse.Namespace) -> int:
    configs = _settings(getattr(args, "env", None), getattr(args, "compare", None))
    stacks = {name: Stack.on_free_ports(data_dir=Path(args.data_dir) / name if len(configs) > 1
                                        else Path(args.data_dir), quiet=True, env=env)
              for name, env in configs}
    results: dict[str, list[CallResult]] = {name: [] for name in stacks}
    try:
        for stack in stacks.values():
            _start(stack)
        synth = load_synth()
        per_call = max(1, len(BENCH_QUESTIONS) // max(1, args.calls))
        for index in range(args.calls):
            questions = [BENCH_QUESTIONS[(index * per_call + k) % len(BENCH_QUESTIONS)] for k in range(per_call)]
            # Call by call, each stack in turn: whatever else loads the machine hits both alike.
            for name, stack in stacks.items():
                result = asyncio.run(place_call(stack.edge_url, [say(synth, q) for q in questions],
                                                nats_url=stack.url))
                results[name].append(result)
                print(f"call {index + 1}/{args.calls} ({name}): " + ", ".join(
                    f"{t.mouth_to_ear_ms:.0f} ms" for t in result.replies), flush=True)
    except StackError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for stack in stacks.values():
            stack.stop()
    for name, env in configs:
        if len(configs) > 1:
            print(f"\n{name}: {' '.join(f'{k}={v}' for k, v in env.items()) or 'defaults'}")
        print(summarize(results[name]))
    if len(configs) > 1:
        print("\n" + ratio_line(results["old"], results["new"]))
    return 0


def ratio_line(old: list[CallResult], new: list[CallResult]) -> str:
    """new / old mouth-to-ear at p50 and p95, measured in one run."""
    (a, _), (b, _) = mouth_to_ear(old), mouth_to_ear(new)
    if not a or not b:
        return "no ratio: a configuration has no replies measured"
    return (f"mouth-to-ear new/old: p50 {_percentile(b, 50) / _percentile(a, 50):.2f}, "
            f"p95 {_percentile(b, 95) / _percentile(a, 95):.2f}")
