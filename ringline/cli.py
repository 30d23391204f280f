"""The `ringline` command: run the stack, place simulated calls, inspect call records."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import sys
import time
from pathlib import Path

from .stack import SERVICES, Stack, StackError


def parse_replicas(text: str | None) -> dict[str, int]:
    """`stt=2,brain=2,telephony=2` -> {"stt": 2, "brain": 2, "telephony": 2}."""
    replicas: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, count = part.partition("=")
        if name not in SERVICES or not count.isdigit() or not 1 <= int(count) <= 16:
            raise ValueError(f"--replicas {part!r}: expected SERVICE=N (N 1-16) with SERVICE one of "
                             f"{', '.join(SERVICES)}")
        replicas[name] = int(count)
    return replicas


def cmd_up(args: argparse.Namespace) -> int:
    from .nats_config import data_dir

    if os.environ.get("RINGLINE_AGENTS_FILE"):
        from ringline.contracts.agents import AgentsFileError, load_agents

        try:
            load_agents(os.environ["RINGLINE_AGENTS_FILE"])
        except AgentsFileError as exc:
            print(f"ringline up: invalid agents file {exc}", file=sys.stderr)
            return 1
    try:
        replicas = parse_replicas(args.replicas)
    except ValueError as exc:
        print(f"ringline up: {exc}", file=sys.stderr)
        return 2
    stack = Stack(data_dir=Path(args.data_dir), nats_url=os.environ.get("NATS_URL"), nats_port=args.nats_port,
                  replicas=replicas)
    stop = False

    def _signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _signal)
    signal.signal(signal.SIGINT, _signal)
    names = ", ".join(f"{n} x{replicas[n]}" if replicas.get(n, 1) > 1 else n for n in SERVICES)
    print(f"starting nats-server and {names} (logs in {args.data_dir}/logs) ...", flush=True)
    try:
        stack.start(timeout=args.timeout)
    except StackError as exc:
        print(f"ringline up failed: {exc}", file=sys.stderr)
        return 1
    print(f"Ringline is up. Edge: {stack.edge_url}  (Twilio webhook: {stack.edge_url}/twilio/voice)")
    if Path(args.data_dir).resolve() != data_dir().resolve():
        print(f"The other ringline commands find this stack with RINGLINE_DATA_DIR={args.data_dir}")
    token_hint = "#token=<RINGLINE_TELEPHONY_WEB_TOKEN>" if os.environ.get("RINGLINE_TELEPHONY_WEB_TOKEN") else ""
    print(f"In a browser: softphone {stack.edge_url}/phone{token_hint}  "
          f"dashboard {stack.edge_url}/dashboard{token_hint}")
    if replicas:  # for chaos by hand: `kill -9 PID` one of them, its calls carry on elsewhere
        print("Replicas: " + ", ".join(f"{key} :{stack.port_of(key)} pid {stack.process(key).pid}"
                                       for name in stack.services for key in stack.replica_keys(name)))
    print(f"NATS: {stack.server_url}{' (one user per service; the CLIs log in as operator)' if stack.users else ''}."
          f"  Try: ringline call --say 'What can you do?'   Ctrl-C stops everything.",
          flush=True)
    try:
        reported: set[str] = set()
        while not stop:
            for name, proc in list(stack.processes.items()):
                if proc.poll() is None or name in reported:
                    continue
                reported.add(name)
                service = name.rpartition("-")[0] if name.rpartition("-")[2].isdigit() else name
                alive = [k for k in stack.replica_keys(service) if k in stack.processes
                         and stack.processes[k].poll() is None] if service in SERVICES else []
                if alive:  # a replica died (a chaos test?): the others carry its calls
                    print(f"{name} exited with {proc.returncode}; {', '.join(alive)} still up", file=sys.stderr)
                else:
                    print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr)
                    stop = True
            time.sleep(0.5)
    finally:
        print("stopping ...", flush=True)
        stack.stop()
        print("stopped.")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    module = importlib.import_module(f"ringline.services.{args.service}.app")
    module.main()
    return 0


def cmd_calls(args: argparse.Namespace) -> int:
    from .nats_config import client_url
    from .records import MemoryUnavailable, format_record, format_summaries, get_call, list_calls

    url = client_url(args.nats)
    try:
        if args.action == "show":
            if not args.call_id:
                print("usage: ringline calls show CALL_ID", file=sys.stderr)
                return 2
            record = asyncio.run(get_call(url, args.call_id))
            if record is None:
                print(f"no call {args.call_id}", file=sys.stderr)
                return 1
            print(record.model_dump_json(indent=2) if args.json else format_record(record))
        else:
            calls = asyncio.run(list_calls(url, args.limit))
            print("[" + ",".join(c.model_dump_json() for c in calls) + "]" if args.json else format_summaries(calls))
    except MemoryUnavailable as exc:
        print(f"{exc} (is `ringline up` running?)", file=sys.stderr)
        return 1
    return 0


def cmd_call(args: argparse.Namespace) -> int:
    from .caller.cli import run

    return run(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


def cmd_bench(args: argparse.Namespace) -> int:
    if args.concurrent or args.sweep:
        from .loadbench.run import run as run_load

        return run_load(args)
    from .demo import run_bench

    return run_bench(args)


def cmd_config(args: argparse.Namespace) -> int:
    from .config_doc import markdown, update_readme

    if args.readme:
        changed = update_readme(Path(args.readme))
        print(f"{args.readme}: configuration table {'updated' if changed else 'already current'}")
        return 0
    print(markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .nats_config import DEFAULT_NATS_URL, data_dir

    parser = argparse.ArgumentParser(prog="ringline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start nats-server and the five services; Ctrl-C stops them")
    up.add_argument("--data-dir", default=str(data_dir()),
                    help="JetStream store, logs and NATS users (default $RINGLINE_DATA_DIR or .ringline)")
    up.add_argument("--nats-port", type=int, default=4222, help="port of the nats-server it starts")
    up.add_argument("--timeout", type=float, default=300, help="seconds to wait for every service to be healthy")
    up.add_argument("--replicas", help="processes per service, e.g. stt=2,brain=2,tts=2,memory=2,telephony=2 "
                    "(two or more edges sit behind a local round-robin proxy on the edge port)")
    up.set_defaults(func=cmd_up)

    run = sub.add_parser("run", help="run one service in the foreground")
    run.add_argument("service", choices=SERVICES)
    run.set_defaults(func=cmd_run)

    call = sub.add_parser("call", help="place a simulated call that speaks Twilio Media Streams")
    from .caller.cli import configure

    configure(call)
    call.set_defaults(func=cmd_call)

    from .dial import configure as configure_dial
    from .dial import run as run_dial

    dial = sub.add_parser("dial", help="the agent calls a number (POST /calls on the edge); --simulate without Twilio")
    configure_dial(dial)
    dial.set_defaults(func=run_dial)

    calls = sub.add_parser("calls", help="list call records, or `calls show ID` for one transcript")
    calls.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    calls.add_argument("call_id", nargs="?")
    calls.add_argument("--limit", type=int, default=20)
    calls.add_argument("--json", action="store_true")
    calls.add_argument("--nats", help=f"NATS URL (default $NATS_URL or {DEFAULT_NATS_URL})")
    calls.set_defaults(func=cmd_calls)

    from .voicemail_cli import configure as configure_voicemail

    configure_voicemail(sub.add_parser("voicemail", help="list voicemail, or `voicemail play ID` for its audio"))

    from .memory_cli import configure as configure_memory

    configure_memory(sub.add_parser(
        "memory", help="callers the agents remember; `memory show|forget NUMBER --agent A`"))

    demo = sub.add_parser("demo", help="start everything, place one call on the offline stack, print it, stop")
    demo.add_argument("--say", action="append", help="what the caller says (repeatable)")
    demo.add_argument("--data-dir", default=str(data_dir()))
    demo.add_argument("--out", default=".ringline/demo-agent.wav")
    demo.set_defaults(func=cmd_demo)

    from .agents_cli import configure as configure_agents

    configure_agents(sub.add_parser("agents", help="validate the agents file and list its agents"))

    config = sub.add_parser("config", help="every setting of every service, as a markdown table")
    config.add_argument("--markdown", action="store_true", help="print the markdown table (the default)")
    config.add_argument("--readme", metavar="PATH", help="rewrite the table in this README instead of printing it")
    config.set_defaults(func=cmd_config)

    bench = sub.add_parser("bench", help="mouth-to-ear latency over scripted calls on the offline stack")
    bench.add_argument("--calls", type=int, default=4)
    bench.add_argument("--data-dir", default=".ringline-bench")
    bench.add_argument("--concurrent", type=int, default=0, help="N simulated Twilio callers at once (load bench)")
    bench.add_argument("--duration", type=float, default=30.0, help="seconds each load-bench call talks")
    bench.add_argument("--providers", choices=("local", "cloud-sim"), default="cloud-sim",
                       help="load bench: local models, or the Deepgram/Claude/Cartesia doubles with their latencies")
    bench.add_argument("--sweep", help="load bench at each concurrency (10,25,50,100,200): a PNG and the knee")
    bench.add_argument("--png", help="where --sweep draws latency and jitter vs concurrency")
    bench.add_argument("--env", action="append", metavar="KEY=VALUE", help="extra service environment (load bench)")
    bench.add_argument("--compare", metavar="KEY=VALUE,...",
                       help="a second stack with these settings (the old behaviour) beside the defaults: the load "
                       "bench prints CPU per call-second old vs new, the latency bench (--calls) mouth-to-ear")
    bench.set_defaults(func=cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
