"""`ringline call`: place a simulated phone call to the telephony edge.

    ringline call --say "Hi, I'd like to book a table" --say "Two people, at eight" --out agent.wav
    ringline call --scenario barge-in.yaml        # steps: say/wait/interrupt/backchannel/dtmf/hangup/...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..nats_config import client_url
from .call import CallResult, place_call
from .report import format_result
from .scenario import Scenario, ScenarioError
from .scenario import prepare as prepare_scenario
from .scenario_file import load_scenario
from .speech import Utterance, load_synth, read_wav, say


class _ScriptItem(argparse.Action):
    """Appends to its own list (args.say / args.wav) and to args.script, keeping the order given."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, value: Any,
                 option_string: str | None = None) -> None:
        items = list(getattr(namespace, self.dest, None) or [])
        items.append(value)
        setattr(namespace, self.dest, items)
        script = list(getattr(namespace, "script", None) or [])
        script.append((self.dest, value))
        namespace.script = script


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="telephony edge base URL")
    parser.add_argument("--say", action=_ScriptItem, default=[], metavar="TEXT",
                        help="an utterance spoken by the local Piper voice (repeatable)")
    parser.add_argument("--wav", action=_ScriptItem, default=[], metavar="FILE",
                        help="an utterance read from a 16-bit WAV file (repeatable)")
    parser.add_argument("--scenario", type=Path, default=None, metavar="FILE",
                        help="a YAML or JSON scenario (say, wait, interrupt, backchannel, dtmf, hangup, "
                        "expect_hangup); instead of --say/--wav")
    parser.add_argument("--from", dest="from_", default="+15550100001", metavar="NUMBER", help="caller number")
    parser.add_argument("--to", default="+15550100002", metavar="NUMBER", help="called number")
    parser.add_argument("--agent", default=None, help="agent id (?agent= on the voice webhook)")
    parser.add_argument("--out", type=Path, default=None, metavar="WAV",
                        help="save what the caller heard (8 kHz 16-bit WAV, silences included)")
    parser.add_argument("--nats", default=client_url(),
                        help="NATS URL to fetch the call record from ('' to skip)")
    parser.add_argument("--reply-timeout", type=float, default=20.0, metavar="S",
                        help="seconds to wait for the greeting and for each reply to start")
    parser.add_argument("--public-url", default=None,
                        help="URL the edge signs against (its public_url), when it differs from --url")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(script=[])


def _script(args: argparse.Namespace) -> list[tuple[str, str]]:
    script = list(getattr(args, "script", None) or [])
    if not script:  # a Namespace built by hand
        script = [("say", t) for t in getattr(args, "say", None) or []]
        script += [("wav", str(p)) for p in getattr(args, "wav", None) or []]
    return script


def prepare(script: list[tuple[str, str]]) -> list[Utterance]:
    """Synthesize and load every utterance before the call: nothing blocks once it rings."""
    synth = load_synth(threads=1) if any(kind == "say" for kind, _ in script) else None
    return [say(synth, item) if kind == "say" and synth is not None else read_wav(item) for kind, item in script]


def _plan(args: argparse.Namespace) -> Scenario | list[Utterance]:
    """The scenario file (prepared) or the --say/--wav script; blocking (voice, files)."""
    path = getattr(args, "scenario", None)
    if path is None:
        return prepare(_script(args))
    if _script(args):
        raise ScenarioError("give either --scenario or --say/--wav, not both")
    return prepare_scenario(load_scenario(path))


async def _run(args: argparse.Namespace) -> CallResult:
    plan = await asyncio.to_thread(_plan, args)
    return await place_call(
        args.url,
        plan,
        caller=getattr(args, "from_", "+15550100001"),
        callee=args.to,
        agent=args.agent,
        out=args.out,
        nats_url=args.nats or None,
        reply_timeout=args.reply_timeout,
        auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None,
        public_url=getattr(args, "public_url", None),
    )


def run(args: argparse.Namespace) -> int:
    """0 when the call went as scripted, 1 when something went wrong (reported), 2 on bad input."""
    try:
        result = asyncio.run(_run(args))
    except (OSError, ValueError) as exc:  # an unreadable WAV or scenario, a voice that would not load
        print(f"ringline call: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "json", False):
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(format_result(result))
    return 0 if result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringline call", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
