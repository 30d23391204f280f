"""One concurrency level, or a sweep of them, against a stack started for the bench.

    ringline bench --concurrent 50 --duration 60 --providers cloud-sim
    ringline bench --sweep 10,25,50,100,200 --duration 40 --png bench.png

The bench starts its own nats-server (with its monitoring port, for message rates), the five
services, and for cloud-sim the three provider doubles, each in its own process. Callers run in
caller processes, starts staggered over the ramp, audio paced in real time. It prints what the
callers heard and what it cost; it asserts nothing about times.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from ringline.stack import SERVICES, Stack, free_port, nats_server_binary, port_open

from .callers import CallerJob, CallerReport, CallOutcome, run_callers
from .measure import nats_messages, pct, proc_sample
from .sim import QUESTIONS, cloud_sim, injected_ms

CALLS_PER_PROCESS = 25
SECONDS_PER_QUESTION = 7.0  # a question (~2 s), the reply's wait and its audio (~4 s), a breath


@dataclass
class Point:
    concurrent: int
    held: int = 0
    m2e: list[float] = field(default_factory=list)
    overhead: list[float] = field(default_factory=list)
    jitter_frames: list[float] = field(default_factory=list)  # per agent frame: ms it came late
    stalls: list[float] = field(default_factory=list)
    asked: int = 0
    unanswered: int = 0
    talked_over: int = 0
    wall_s: float = 0.0
    service_cpu_s: dict[str, float] = field(default_factory=dict)
    service_rss_mb: dict[str, float] = field(default_factory=dict)
    caller_cpu_s: float = 0.0
    caller_processes: int = 0
    call_s: float = 0.0  # the calls' lengths, summed: CPU per call-second is CPU / call_s
    nats_msgs_per_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def row(self) -> dict[str, float]:
        return {"n": self.concurrent, "m2e_p50": pct(self.m2e, .5), "m2e_p95": pct(self.m2e, .95),
                "m2e_p99": pct(self.m2e, .99), "over_p50": pct(self.overhead, .5),
                "over_p95": pct(self.overhead, .95), "jitter_p99": pct(self.jitter_frames, .99),
                "stall_max": max(self.stalls, default=0.0), "held": self.held, "unanswered": self.unanswered}


def start_nats(data_dir: Path) -> tuple[subprocess.Popen, str, str]:
    port, monitor = free_port(), free_port()
    store = (data_dir / "jetstream").resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "logs" / "nats.log", "ab")
    proc = subprocess.Popen([nats_server_binary(), "-a", "127.0.0.1", "-p", str(port), "-m", str(monitor),
                             "-js", "-sd", str(store)], stdout=log, stderr=subprocess.STDOUT)
    log.close()
    deadline = time.monotonic() + 15
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("nats-server did not start")
        time.sleep(0.05)
    return proc, f"nats://127.0.0.1:{port}", f"http://127.0.0.1:{monitor}"


def service_env(max_calls: int) -> dict[str, str]:
    """Room for every call the bench places: it measures the pipeline, not the refusals (a replica
    whose loop lags on this shared box would refuse calls; the bench reports the lag as latency)."""
    env = {f"RINGLINE_{s.upper()}_MAX_CALLS": str(max_calls + 50) for s in SERVICES}
    env |= {f"RINGLINE_{s.upper()}_MAX_LOOP_LAG_MS": "60000" for s in SERVICES}
    env.update(RINGLINE_TELEPHONY_MAX_STREAMS=str(max_calls + 50), RINGLINE_TELEPHONY_CALLER_CALLS_PER_MINUTE="0",
               RINGLINE_TELEPHONY_AGENT_CALLS_PER_MINUTE="0")
    return env


def run_point(stack: Stack, monitor: str, n: int, duration_s: float, utterances: list, injected: float,
              extra_pids: dict[str, int]) -> Point:
    point = Point(n)
    ramp_s = min(duration_s / 2, 0.1 * n)
    starts = [ramp_s * i / n for i in range(n)]
    processes = max(1, math.ceil(n / CALLS_PER_PROCESS))
    t0 = time.time() + 3.0  # the caller processes' start-up
    jobs = [CallerJob(stack.edge_url, starts[p::processes], t0, utterances, first_number=p * 100_000)
            for p in range(processes)]
    pids = {key: proc.pid for key, proc in stack.processes.items()} | extra_pids
    before = {key: proc_sample(pid) for key, pid in pids.items()}
    msgs_before, started = nats_messages(monitor), time.monotonic()
    with ProcessPoolExecutor(max_workers=processes, mp_context=get_context("spawn")) as pool:
        reports: list[CallerReport] = list(pool.map(run_callers, jobs))
    point.wall_s = time.monotonic() - started
    point.nats_msgs_per_s = (nats_messages(monitor) - msgs_before) / max(1e-9, point.wall_s)
    for key, pid in pids.items():
        after = proc_sample(pid)
        point.service_cpu_s[key] = after.cpu_s - before[key].cpu_s
        point.service_rss_mb[key] = after.rss_mb
    point.caller_processes = len(reports)
    point.caller_cpu_s = sum(r.cpu_s for r in reports)
    outcomes: list[CallOutcome] = [o for r in reports for o in r.outcomes]
    for o in outcomes:
        point.held += o.ok
        point.m2e += o.mouth_to_ear_ms
        point.overhead += [m - injected for m in o.mouth_to_ear_ms]
        point.stalls += o.stalls_ms
        frames = round(o.agent_audio_s / 0.02)
        point.jitter_frames += o.stalls_ms + [0.0] * max(0, frames - len(o.stalls_ms))
        point.asked += o.asked
        point.unanswered += o.unanswered
        point.talked_over += o.talked_over
        point.call_s += o.duration_s
        point.problems += o.problems
    return point


def report(point: Point, providers: str, injected: float) -> str:
    r = point.row()
    n = point.concurrent
    call_s = max(1e-9, point.call_s)
    services = service_cpu(point)
    lines = [
        f"== {n} concurrent calls ({providers}; {point.caller_processes} caller processes, {point.wall_s:.0f} s) ==",
        f"calls held           {point.held}/{n}   turns unanswered {point.unanswered}/{point.asked}   "
        f"agent audio over the caller {point.talked_over}",
        f"mouth-to-ear         p50 {r['m2e_p50']:6.0f} ms  p95 {r['m2e_p95']:6.0f} ms  p99 {r['m2e_p99']:6.0f} ms "
        f"({len(point.m2e)} replies)",
        f"ringline overhead    p50 {r['over_p50']:6.0f} ms  p95 {r['over_p95']:6.0f} ms  "
        f"(mouth-to-ear minus {injected:.0f} ms injected provider time)",
        f"outbound jitter      p99 {r['jitter_p99']:6.1f} ms per 20 ms frame; {len(point.stalls)} hiccups, "
        f"max {r['stall_max']:.0f} ms",
        f"NATS                 {point.nats_msgs_per_s:8.0f} msgs/s (in + out)",
        f"callers              {point.caller_cpu_s:6.1f} CPU s ({point.caller_cpu_s / n:.2f} per call, "
        f"{point.caller_cpu_s / call_s:.4f} per call-second)",
        f"services             {services:6.1f} CPU s ({services / call_s:.4f} per call-second over {call_s:.0f} "
        f"call-seconds: {call_s / max(1e-9, services):.0f} calls per core)",
        f"{'process':<12} {'CPU s':>7} {'CPU s/call':>10} {'/call-s':>8} {'RSS MB':>7} {'RSS MB/call':>11}",
    ]
    for key in sorted(point.service_cpu_s):
        cpu, rss = point.service_cpu_s[key], point.service_rss_mb[key]
        lines.append(f"{key:<12} {cpu:7.1f} {cpu / n:10.3f} {cpu / call_s:8.4f} {rss:7.0f} {rss / n:11.2f}")
    if point.problems:
        common = sorted(set(point.problems), key=point.problems.count, reverse=True)[:3]
        lines.append(f"problems ({len(point.problems)}): " + "; ".join(common))
    return "\n".join(lines)


def service_cpu(point: Point) -> float:
    """CPU seconds of the five services and nats-server (not the callers, not the provider doubles)."""
    return sum(cpu for key, cpu in point.service_cpu_s.items() if not key.startswith("sim-"))


def knee(points: list[Point]) -> tuple[int | None, str]:
    """The first concurrency where the calls degrade: a call not held, a turn unanswered, jitter
    p99 at 40 ms, or the overhead p95 more than doubled (and 50 ms up) from the lightest load."""
    if not points:
        return None, "no points"
    base = points[0].row()["over_p95"]
    for p in points:
        r = p.row()
        if p.held < p.concurrent or p.unanswered:
            return p.concurrent, f"{p.concurrent - p.held} calls not held, {p.unanswered} turns unanswered"
        if r["jitter_p99"] >= 40:
            return p.concurrent, f"jitter p99 {r['jitter_p99']:.0f} ms"
        if r["over_p95"] > max(2 * base, base + 50):
            return p.concurrent, f"overhead p95 {r['over_p95']:.0f} ms (vs {base:.0f} ms at {points[0].concurrent})"
    return None, f"none up to {points[-1].concurrent} calls"


def draw(points: list[Point], at: int | None, why: str, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [p.row() for p in points]
    xs = [r["n"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for key, label in (("m2e_p50", "mouth-to-ear p50"), ("m2e_p95", "p95"), ("m2e_p99", "p99"),
                       ("over_p95", "Ringline overhead p95")):
        top.plot(xs, [r[key] for r in rows], marker="o", label=label)
    top.set_ylabel("ms")
    top.legend()
    top.set_title(title)
    bottom.plot(xs, [r["jitter_p99"] for r in rows], marker="o", label="outbound jitter p99 (per frame)")
    bottom.plot(xs, [r["stall_max"] for r in rows], marker="x", linestyle="--", label="longest hiccup")
    bottom.axhline(40, color="grey", linewidth=0.8, linestyle=":")
    bottom.set_ylabel("ms")
    bottom.set_xlabel("concurrent calls")
    bottom.legend()
    for ax in (top, bottom):
        if at is not None:
            ax.axvline(at, color="red", linewidth=1)
    if at is not None:
        top.annotate(f"knee: {at} ({why})", (at, top.get_ylim()[1] * 0.9), color="red", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def run_levels(args: argparse.Namespace, levels: list[int], utterances: list, injected: float,
               overrides: dict[str, str], label: str) -> list[Point]:
    """Start nats-server, the doubles and the five services with `overrides`, run each level, stop."""
    data_dir = Path(args.data_dir)
    points: list[Point] = []
    with ExitStack() as stack_of:
        nats, url, monitor = start_nats(data_dir)
        stack_of.callback(nats.wait, 10)  # callbacks run last-in first-out: terminate, then wait
        stack_of.callback(nats.terminate)
        env, extra = service_env(max(levels)), {"nats": nats.pid}
        if args.providers == "cloud-sim":
            sim_env, sims = stack_of.enter_context(cloud_sim())
            env |= sim_env
            extra |= {f"sim-{name}": proc.pid for name, proc in sims.items()}
        env |= dict(kv.split("=", 1) for kv in args.env or [])
        env |= overrides
        stack = Stack.on_free_ports(data_dir=data_dir, nats_url=url, quiet=True, env=env, auth=False)
        print(f"{label}starting the five services (logs in {data_dir / 'logs'}) ...", flush=True)
        stack.start(timeout=300)
        stack_of.callback(stack.stop)
        # One call first, not measured: a service's first call pays its imports and connections.
        warm = run_point(stack, monitor, 1, SECONDS_PER_QUESTION, utterances[:1], injected, extra)
        print(f"warm-up call: {'held' if warm.held else 'NOT held: ' + '; '.join(warm.problems[:2])}", flush=True)
        for n in levels:
            point = run_point(stack, monitor, n, args.duration, utterances, injected, extra)
            points.append(point)
            print(label + report(point, args.providers, injected), flush=True)
    return points


def variants(compare: str | None) -> list[tuple[str, dict[str, str]]]:
    """`--compare KEY=VALUE,...`: the old behaviour (those settings) and the new (the defaults)."""
    if not compare:
        return [("", {})]
    old = dict(kv.strip().split("=", 1) for kv in compare.split(",") if kv.strip())
    return [("[old] ", old), ("[new] ", {})]


def sweep_table(points: list[Point], label: str = "") -> str:
    at, why = knee(points)
    lines = [f"{label}knee: {at if at is not None else '-'} ({why})",
             f"{'n':>5} {'m2e p50':>8} {'p95':>6} {'p99':>6} {'over p50':>9} {'over p95':>9} {'jitter p99':>11} "
             f"{'held':>8} {'svc CPU/call-s':>15}"]
    for p in points:
        r = p.row()
        lines.append(f"{p.concurrent:5d} {r['m2e_p50']:8.0f} {r['m2e_p95']:6.0f} {r['m2e_p99']:6.0f} "
                     f"{r['over_p50']:9.0f} {r['over_p95']:9.0f} {r['jitter_p99']:11.1f} {p.held:4d}/{p.concurrent:<4d}"
                     f"{service_cpu(p) / max(1e-9, p.call_s):15.4f}")
    return "\n".join(lines)


def compare_table(old: list[Point], new: list[Point]) -> str:
    """Per level and process: CPU per call-second, old vs new, and their ratio."""
    lines = [f"{'n':>5} {'process':<12} {'old /call-s':>12} {'new /call-s':>12} {'new/old':>8}"]
    for a, b in zip(old, new, strict=True):
        for key in [*sorted(set(a.service_cpu_s) | set(b.service_cpu_s)), "services", "callers"]:
            if key == "services":
                x, y = service_cpu(a), service_cpu(b)
            elif key == "callers":
                x, y = a.caller_cpu_s, b.caller_cpu_s
            else:
                x, y = a.service_cpu_s.get(key, 0.0), b.service_cpu_s.get(key, 0.0)
            x, y = x / max(1e-9, a.call_s), y / max(1e-9, b.call_s)
            lines.append(f"{a.concurrent:5d} {key:<12} {x:12.4f} {y:12.4f} {y / x if x else float('nan'):8.2f}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    levels = [int(x) for x in args.sweep.split(",")] if args.sweep else [args.concurrent]
    Path(args.data_dir).mkdir(parents=True, exist_ok=True)
    questions = max(1, round(args.duration / SECONDS_PER_QUESTION))
    from ringline.caller.speech import load_synth, say

    voice = load_synth(threads=1)
    utterances = [say(voice, QUESTIONS[i % len(QUESTIONS)]) for i in range(questions)]
    injected = float(injected_ms()) if args.providers == "cloud-sim" else 0.0
    print(f"{questions} questions a call; {os.cpu_count()} CPUs on this machine (shared: numbers are noisy)",
          flush=True)
    results = [(label, run_levels(args, levels, utterances, injected, overrides, label))
               for label, overrides in variants(getattr(args, "compare", None))]
    for label, points in results:
        if args.sweep or len(results) > 1:
            print("\n" + sweep_table(points, label))
    if len(results) == 2:
        print("\nCPU per call-second, old (" + getattr(args, "compare", "") + ") vs new (defaults):")
        print(compare_table(results[0][1], results[1][1]))
    if args.sweep:
        for label, points in results:
            at, why = knee(points)
            png = Path(args.png or Path(args.data_dir) / "sweep.png")
            if label:
                png = png.with_name(f"{png.stem}-{label.strip(' []')}{png.suffix}")
            draw(points, at, why, png, f"Ringline under load ({args.providers}, {os.cpu_count()} CPUs) {label}")
            print(f"plot: {png}")
    return 0 if all(p.held == p.concurrent for _, points in results for p in points) else 1
