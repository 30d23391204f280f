"""Failover benchmark for the back-end stages: kill (or drain) the replica serving a stage mid-call.

    .venv/bin/python tests/bench/failover_bench.py [--rounds 3] [--stages brain,tts,stt,memory] [--drain]

Starts nats-server, one edge and two replicas of every back-end stage on the offline models
(`Stack(replicas=...)`), then places `--rounds` calls of five questions. In each call, when the
agent starts answering question k, the replica that holds the lease of stage k is killed with
SIGKILL (`--drain`: SIGTERM, so it drains and hands the call over at its deadline) and started
again in the background. Printed per stage, p50/p95 over the rounds:

  takeover      kill -> another replica of the stage announces `stage.takeover`
  next audio    kill -> the next agent audio the edge sends the caller
  next answer   the mouth-to-ear of the first answer after the kill (the "one slow turn")

and, over all calls, the caller's questions that got an answer, and how long a drained replica
took to exit. Numbers, not assertions: this box has 2 cores shared with other work.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import tempfile
import time
from pathlib import Path

from ringline.caller import Say, Scenario, Wait, prepare
from ringline.caller.speech import load_synth
from ringline.chaos import Kill, chaos_call, percentile
from ringline.stack import Stack

QUESTIONS = [
    "What is the capital city of France?",
    "What is the capital of Italy?",
    "How many days are in a week?",
    "What color is the sky?",
    "What is the capital city of France?",
]


def _row(name: str, values: list[float | None], unit: str, scale: float = 1.0) -> str:
    seen = [v * scale for v in values if v is not None]
    if not seen:
        return f"  {name:<12} -"
    return (f"  {name:<12} p50 {percentile(seen, 50):7.2f} {unit}  p95 {percentile(seen, 95):7.2f} {unit}"
            f"  max {max(seen):7.2f} {unit}  (n={len(seen)}, missing {len(values) - len(seen)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stages", default="brain,tts,stt,memory")
    parser.add_argument("--drain", action="store_true", help="SIGTERM (drain and hand over) instead of SIGKILL")
    parser.add_argument("--keep", type=Path, default=None, help="keep the stack's data and logs in this folder")
    parser.add_argument("--kill-after", type=float, default=0.8, help="seconds into the answer")
    args = parser.parse_args()
    stages = [s for s in args.stages.split(",") if s]
    drain_env = {f"RINGLINE_{s.upper()}_DRAIN_TIMEOUT_S": "3" for s in stages}
    sig = signal.SIGTERM if args.drain else signal.SIGKILL

    voice = load_synth(threads=1)
    steps: list = []
    for question in QUESTIONS:
        steps += [Say(question), Wait(ms=1500)]
    kills: list[Kill] = []
    asked = answered = 0
    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or Path(tmp)
        data.mkdir(parents=True, exist_ok=True)
        stack = Stack.on_free_ports(data_dir=data, quiet=True, auth=False,
                                    replicas={stage: 2 for stage in stages},
                                    env=drain_env if args.drain else {})
        started = time.monotonic()
        stack.start(timeout=600)
        print(f"stack up in {time.monotonic() - started:.0f} s; {args.rounds} calls, killing {stages}"
              f" with {'SIGTERM (drain)' if args.drain else 'SIGKILL'} {args.kill_after} s into an answer")
        try:
            for n in range(args.rounds):
                time.sleep(20 if n else 0)  # the killed replicas come back (model loading) before the next call
                chaos = asyncio.run(chaos_call(stack, prepare(Scenario(steps), voice), stages,
                                               kill_after_s=args.kill_after, sig=sig))
                callers = [t for t in chaos.result.turns if t.speaker == "caller"]
                asked += len(callers)
                answered += min(len(callers), len(chaos.result.replies))
                for kill in chaos.kills:
                    print(f"call {n + 1}: {kill.stage:<6} {kill.replica or kill.error:<9} takeover {kill.takeover_s}"
                          f"  next audio {kill.gap_s}  next answer {kill.next_answer_ms} ms")
                if chaos.result.problems:
                    print(f"call {n + 1} problems: {chaos.result.problems}")
                kills += chaos.kills
        finally:
            stack.stop()
    print("\nper stage (seconds unless noted):")
    for stage in stages:
        mine = [k for k in kills if k.stage == stage]
        print(f"{stage}:")
        print(_row("takeover", [k.takeover_s for k in mine], "s"))
        print(_row("next audio", [k.gap_s for k in mine], "s"))
        print(_row("next answer", [k.next_answer_ms for k in mine], "ms"))
    print(f"\nquestions answered: {answered}/{asked} ({100 * answered / max(1, asked):.0f}%)")


if __name__ == "__main__":
    main()
