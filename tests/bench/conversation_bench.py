"""Conversation benchmark: turn-taking as a caller experiences it, on the real offline stack.

    .venv/bin/python tests/bench/conversation_bench.py [--calls 2] [--data-dir .ringline-bench]
    .venv/bin/python tests/bench/conversation_bench.py --turn-model   (text rules vs the end-of-turn model)

Starts nats-server and the five services twice (brain without, then with preemptive generation)
and places `--calls` scripted calls on each. Every call: a sentence with a 600 ms pause in the
middle, a long request the caller interrupts, a long request the caller backchannels into
("uh-huh" and the like, at most 300 ms of speech), and one with a longer backchannel ("okay",
"mm-hmm": 350-550 ms). Printed, per configuration:

  barge-in reaction   caller's interrupting speech onset -> `clear` received at the phone
                      (p50/p95; target p95 <= 300 ms), and interrupted-turn audio after the clear
  false cut-offs      agent audio during/after the 600 ms pause, before the caller finished (target 0)
  backchannels        agent turns stopped by <= 300 ms backchannels (target 0), and by longer ones;
                      how many paused the agent (a `clear`) before it went on, and for how long
  mouth-to-ear        caller's end of speech -> first agent audio, every answered utterance (p50/p95);
                      replies that started before the caller finished are counted, not averaged in
  end of turn         the stt stage's end of speech -> final transcript out (`stt.utterance`
                      `end_of_turn_ms` from the call record, p50/p95), and why the turns ended

`--backchannels` measures backchannels and real interruptions instead, on the old turn-taking and
the new in one run (see `backchannel_runs`): `--voices`, `--lengths`, `--variant NAME:K=V,...`.

`--turn-model` runs the stack twice with the brain's defaults: `rules` (the old end of turn:
silence and the early transcript's words, `RINGLINE_STT_TURN_MODEL=false`) and `model` (the
learned end-of-turn model judging every pause, the words as second opinion), with a 1 s
mid-sentence pause added to every call.

Numbers, not assertions: this box has 2 cores shared with other work, so timings are noisy.
About 2 minutes per configuration with --calls 2 (stack start included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ringline.caller import Backchannel, CallResult, Interrupt, Pause, Say, Scenario, place_call, prepare
from ringline.caller.speech import load_synth
from ringline.stack import Stack, StackError

PAUSED = [
    ["I'd like to book a table", Pause(600), "for Tuesday evening."],
    ["Can you remind me", Pause(600), "what time you close today?"],
    ["I need to change my booking", Pause(600), "to Friday, please."],
]
LONG_ASKS = [
    "Please tell me a long story about a brave knight and a friendly dragon.",
    "Can you describe, in detail, how to plan a week long trip to Italy?",
    "Tell me everything you know about how bread is baked, step by step.",
    "Please explain at length how the seasons change through the year.",
]
LONG_PAUSED = [
    ["Could you tell me", Pause(1000), "how long the drive from the station takes?"],
    ["My daughter and I would like", Pause(1000), "a quiet table near the window."],
]
INTERRUPTIONS = ["Sorry, wait, stop. What time do you open?", "Hold on, stop there. Can I ask something else?"]
BACKCHANNELS = ["Uh-huh.", "Right."]  # about 260 and 200 ms of speech (Piper varies a little run to run)
LONGER_BACKCHANNELS = ["Okay.", "Mm-hmm."]  # about 380 and 520 ms
INTERRUPT_AFTER_MS = [1000, 1500, 2000]
BACKCHANNEL_AFTER_MS = [800, 1200, 1600]
MAX_BACKCHANNEL_MS = 300.0
PREEMPTIVE_ENV = {"RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "true", "RINGLINE_BRAIN_PREEMPTIVE": "true"}


TURN_MODEL_CONFIGS = [
    ("rules", {"RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "false", "RINGLINE_STT_TURN_MODEL": "false"}),
    ("model", {"RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "false", "RINGLINE_STT_TURN_MODEL": "true"}),
]


def scenario(index: int, long_pause: bool = False) -> Scenario:
    extra = [Say(LONG_PAUSED[index % len(LONG_PAUSED)])] if long_pause else []
    return Scenario([
        Say(PAUSED[index % len(PAUSED)]),
        *extra,
        Say(LONG_ASKS[index % len(LONG_ASKS)]),
        Interrupt(INTERRUPTIONS[index % len(INTERRUPTIONS)], after_ms=INTERRUPT_AFTER_MS[index % 3]),
        Say(LONG_ASKS[(index + 1) % len(LONG_ASKS)]),
        Backchannel(BACKCHANNELS[index % len(BACKCHANNELS)], after_ms=BACKCHANNEL_AFTER_MS[index % 3]),
        Say(LONG_ASKS[(index + 2) % len(LONG_ASKS)]),
        Backchannel(LONGER_BACKCHANNELS[index % len(LONGER_BACKCHANNELS)],
                    after_ms=BACKCHANNEL_AFTER_MS[(index + 1) % 3]),
    ], name=f"conversation-{index}")


@dataclass
class Tally:
    label: str
    calls: list[CallResult] = field(default_factory=list)

    def steps(self, kind: str) -> list[Any]:
        return [s for c in self.calls for s in c.steps if s.kind == kind]

    @property
    def barge_in_ms(self) -> list[float]:
        return [s.barge_in_ms for s in self.steps("interrupt") if s.barge_in_ms is not None]

    @property
    def mouth_to_ear_ms(self) -> list[float]:
        return [t.mouth_to_ear_ms for c in self.calls for t in c.replies
                if t.mouth_to_ear_ms is not None and t.mouth_to_ear_ms > 0]

    def stt_events(self) -> list[dict[str, Any]]:
        return [e for c in self.calls if c.record is not None for e in c.record.events
                if e.get("name") == "stt.utterance"]

    @property
    def end_of_turn_ms(self) -> list[float]:
        return [float(e["end_of_turn_ms"]) for e in self.stt_events() if "end_of_turn_ms" in e]

    def cutoffs(self, low_s: float, high_s: float) -> str:
        steps = [s for s in self.steps("say") if s.pauses
                 and any(low_s <= end - start < high_s for start, end in s.pauses)]
        return f"{sum(1 for s in steps if s.false_cutoff)}/{len(steps)}"

    @property
    def talked_over(self) -> int:
        """Replies whose audio arrived before the caller had finished speaking."""
        return sum(1 for c in self.calls for t in c.replies if t.mouth_to_ear_ms is not None and t.mouth_to_ear_ms <= 0)


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile (with few samples it is the max)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def p50_p95(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {p95(values):.0f} ms (n={len(values)})"


def run_config(label: str, env: dict[str, str], calls: int, data_dir: Path, voice: Any,
               long_pause: bool = False, plans: list[Scenario] | None = None) -> Tally:
    tally = Tally(label)
    stack = Stack.on_free_ports(data_dir=data_dir / label, quiet=True, env=env)
    started = time.monotonic()
    stack.start(timeout=300)
    print(f"[{label}] stack up in {time.monotonic() - started:.0f} s", flush=True)
    plans = plans or [scenario(index, long_pause) for index in range(calls)]
    try:
        for index, plan in enumerate(plans):
            result = asyncio.run(place_call(stack.edge_url, prepare(plan, voice), nats_url=stack.url,
                                            reply_timeout=40.0, max_reply_s=90.0, record_timeout=5.0))
            tally.calls.append(result)
            print(f"[{label}] call {index + 1}/{len(plans)}: {describe(result)}", flush=True)
    finally:
        stack.stop()
    return tally


def describe(result: CallResult) -> str:
    parts = []
    for step in result.steps:
        if step.kind == "interrupt":
            parts.append(f"barge-in {step.barge_in_ms:.0f} ms" if step.barge_in_ms is not None else "NO clear")
        elif step.kind == "backchannel":
            outcome = ("STOPPED" if step.agent_stopped else f"paused {step.paused_ms:.0f} ms"
                       f" (replayed {step.replayed_ms or 0:.0f})" if step.clear_received else "no clear")
            parts.append(f"backchannel {step.voiced_ms:.0f} ms -> {outcome}")
        elif step.kind == "say" and step.pauses:
            parts.append("CUT OFF" if step.false_cutoff else "pause ok")
    parts.append("m2e " + ", ".join(f"{t.mouth_to_ear_ms:.0f}" for t in result.replies))
    if result.problems:
        parts.append(f"problems: {result.problems}")
    return "; ".join(parts)


def summary(tallies: list[Tally]) -> str:
    rows: list[tuple[str, list[str]]] = []

    def row(name: str, value: Any) -> None:
        rows.append((name, [value(t) for t in tallies]))

    row("barge-in reaction p50 / p95", lambda t: p50_p95(t.barge_in_ms))
    row("  interruptions cleared", lambda t: f"{sum(1 for s in t.steps('interrupt') if s.clear_received)}"
                                             f"/{len(t.steps('interrupt'))}")
    row("  audio of the turn after the clear",
        lambda t: f"{sum(s.audio_after_clear_ms or 0 for s in t.steps('interrupt')):.0f} ms")
    row("false cut-offs on 600 ms pauses", lambda t: t.cutoffs(0.5, 0.8))
    row("false cut-offs on 1 s pauses", lambda t: t.cutoffs(0.8, 1.5))
    row("end of turn (speech end -> transcript) p50 / p95", lambda t: p50_p95(t.end_of_turn_ms))
    row("  turns ended by", lambda t: ", ".join(f"{k} {v}" for k, v in sorted(
        Counter(str(e.get("end_reason")) for e in t.stt_events()).items())))
    row("agent stopped by <= 300 ms backchannels", lambda t: _backchannels(t, 0, MAX_BACKCHANNEL_MS))
    row("  paused, then went on (pause p50)", lambda t: _paused(t, 0, MAX_BACKCHANNEL_MS))
    row("agent stopped by longer backchannels", lambda t: _backchannels(t, MAX_BACKCHANNEL_MS, math.inf))
    row("  paused, then went on (pause p50)", lambda t: _paused(t, MAX_BACKCHANNEL_MS, math.inf))
    row("mouth-to-ear p50 / p95", lambda t: p50_p95(t.mouth_to_ear_ms))
    row("  replies started before the caller finished",
        lambda t: f"{t.talked_over}/{sum(len(c.replies) for c in t.calls)}")
    row("calls with problems", lambda t: f"{sum(1 for c in t.calls if c.problems)}/{len(t.calls)}")
    width = max(len(name) for name, _ in rows) + 2
    cols = [max(len(t.label), *(len(v[i]) for _, v in rows)) + 2 for i, t in enumerate(tallies)]
    lines = [" " * width + "".join(t.label.rjust(c) for t, c in zip(tallies, cols, strict=True))]
    lines += [name.ljust(width) + "".join(v.rjust(c) for v, c in zip(values, cols, strict=True))
              for name, values in rows]
    lines.append("targets: barge-in p95 <= 300 ms; 0 false cut-offs; 0 turns stopped by backchannels")
    return "\n".join(lines)


def _backchannel_steps(tally: Tally, low: float, high: float) -> list[Any]:
    return [s for s in tally.steps("backchannel") if s.voiced_ms is not None and low < s.voiced_ms <= high]


def _backchannels(tally: Tally, low: float, high: float) -> str:
    steps = _backchannel_steps(tally, low, high)
    return f"{sum(1 for s in steps if s.agent_stopped)}/{len(steps)}"


def _paused(tally: Tally, low: float, high: float) -> str:
    steps = _backchannel_steps(tally, low, high)
    pauses = [s.paused_ms for s in steps if s.paused_ms is not None]
    median = f" ({statistics.median(pauses):.0f} ms)" if pauses else ""
    return f"{len(pauses)}/{len(steps)}{median}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2, help="scripted calls per configuration")
    parser.add_argument("--data-dir", type=Path, default=Path(".ringline-bench"))
    parser.add_argument("--only", help="run one configuration only (default, preemptive, rules, model; "
                                       "old, new or a variant with --backchannels)")
    parser.add_argument("--turn-model", action="store_true",
                        help="compare the old end of turn (rules) with the end-of-turn model (model)")
    parser.add_argument("--backchannels", action="store_true",
                        help="backchannels of several lengths and voices, and real interruptions: old vs new")
    parser.add_argument("--voices", default="piper,espeak,flite-slt,flite-awb",
                        help="with --backchannels: voices (piper, espeak, flite-slt, flite-awb, festival-kal)")
    parser.add_argument("--lengths", default="200,400,700", help="with --backchannels: speech lengths in ms")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:KEY=VALUE,...",
                        help="with --backchannels: one more configuration, the new defaults with these settings")
    parser.add_argument("--dump", type=Path, help="write every call's result (steps, turns, record) here as JSON")
    args = parser.parse_args(argv)
    started = time.monotonic()
    print("conversation bench (2 shared cores: timings are noisy)", flush=True)
    voice = load_synth(threads=1)
    configs = [("default", {"RINGLINE_BRAIN_PREEMPTIVE_GENERATION": "false"}), ("preemptive", PREEMPTIVE_ENV)]
    plans, lengths = None, [int(ms) for ms in args.lengths.split(",")]
    if args.turn_model:
        configs = TURN_MODEL_CONFIGS
    if args.backchannels:
        import backchannel_runs  # beside this script; loads the voices only when asked for

        configs = backchannel_runs.configs(args.variant)
        plans = backchannel_runs.scenarios(args.voices.split(","), lengths, args.calls)
    tallies = []
    try:
        for label, env in configs:
            if args.only in (None, label):
                tallies.append(run_config(label, env, max(1, args.calls), args.data_dir, voice, args.turn_model,
                                          plans))
    except StackError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if args.dump:
        args.dump.write_text(json.dumps({t.label: [c.to_dict() for c in t.calls] for t in tallies}, default=str))
    print()
    print(backchannel_runs.summary(tallies, lengths) if plans else summary(tallies))
    print(f"total {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
