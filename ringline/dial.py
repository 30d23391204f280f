"""`ringline dial`: the agent calls someone, through the running edge's `POST /calls`.

    export RINGLINE_TELEPHONY_API_TOKEN=...          # the same token the edge was started with
    ringline dial +15550100777 --agent reception --purpose "confirm Tuesday's appointment"
    ringline dial +15550100777 --purpose "..." --simulate --say "Yes, speaking."   # no Twilio
    ringline dial +15550100777 --purpose "..." --simulate --machine                # an answering machine

With Twilio configured on the edge, Twilio rings the number and the agent speaks once it is
answered. `--simulate` places nothing: the edge stores the call as usual, then this command plays
Twilio and the callee (the simulated caller of `ringline call`): it answers the webhook as a human
(or, with `--machine`, as an answering machine), hears the agent's opening, says `--say` lines,
and prints the conversation like `ringline call` does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from .caller.call import CallResult, place_call
from .caller.report import format_result
from .caller.scenario import ExpectHangup, Say, Scenario
from .nats_config import client_url

SIMULATED_FROM = "+15550100000"  # the From of a simulated call whose agent has no number


class DialError(RuntimeError):
    """The edge did not place the call; the message says why."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("number", help="the number to call, E.164 (+15550100777)")
    parser.add_argument("--purpose", required=True, help="why the agent calls; it opens the call with it")
    parser.add_argument("--agent", default=None, help="agent id from the agents file (default: the default agent)")
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="telephony edge base URL")
    parser.add_argument("--token", default=None,
                        help="bearer token of POST /calls (default $RINGLINE_TELEPHONY_API_TOKEN)")
    parser.add_argument("--status-callback", default=None, metavar="URL", help="Twilio posts the call's progress here")
    parser.add_argument("--simulate", action="store_true",
                        help="place nothing at Twilio: answer the call here with the simulated callee")
    parser.add_argument("--machine", action="store_true",
                        help="with --simulate: answer as an answering machine (AnsweredBy=machine_start)")
    parser.add_argument("--say", action="append", default=[], metavar="TEXT",
                        help="with --simulate: what the callee says after the agent's opening (repeatable)")
    parser.add_argument("--out", type=Path, default=None, metavar="WAV", help="with --simulate: save what was heard")
    parser.add_argument("--nats", default=client_url(),
                        help="with --simulate: NATS URL to fetch the call record from ('' to skip)")
    parser.add_argument("--reply-timeout", type=float, default=20.0, metavar="S",
                        help="with --simulate: seconds to wait for the opening and each reply")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


async def request_call(url: str, token: str, to: str, purpose: str, agent: str | None = None, *,
                       simulate: bool = False, status_callback: str | None = None,
                       timeout: float = 15.0) -> dict[str, Any]:
    """`POST /calls` on the edge; the 201 body, or `DialError` with the edge's explanation."""
    body: dict[str, Any] = {"to": to, "purpose": purpose, "simulate": simulate}
    if agent:
        body["agent"] = agent
    if status_callback:
        body["status_callback"] = status_callback
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url.rstrip("/") + "/calls", json=body,
                                         headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise DialError(f"cannot reach the edge at {url}: {exc} (is `ringline up` running?)") from exc
    if response.status_code != 201:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        if isinstance(detail, list):
            detail = "; ".join(f"{d.get('field')}: {d.get('error')}" for d in detail)
        raise DialError(f"the edge answered {response.status_code}: {detail}")
    return response.json()


async def answer(url: str, placed: dict[str, Any], scenario: Scenario, *, machine: bool = False,
                 **call_options: Any) -> CallResult:
    """Play Twilio and the callee of a call `POST /calls` placed (simulated): its webhook with the
    outbound parameters and who answered, then the Media Stream."""
    return await place_call(url, scenario, caller=placed.get("from") or SIMULATED_FROM, callee=placed["to"],
                            voice_path=placed["voice_url"], call_sid=placed["call_sid"],
                            answered_by="machine_start" if machine else "human", **call_options)


def callee_scenario(says: list[str], machine: bool, hangup_timeout_s: float = 40.0) -> Scenario:
    """A machine listens until the agent hangs up; a person says `says` after the opening."""
    if machine:
        return Scenario([ExpectHangup(timeout_s=hangup_timeout_s)], name="answering machine")
    return Scenario([Say(text) for text in says], name="callee")


async def _run(args: argparse.Namespace, token: str) -> tuple[dict[str, Any], CallResult | None]:
    placed = await request_call(args.url, token, args.number, args.purpose, args.agent, simulate=args.simulate,
                                status_callback=args.status_callback)
    if not args.simulate:
        return placed, None
    result = await answer(args.url, placed, callee_scenario(args.say, args.machine), machine=args.machine, out=args.out,
                          nats_url=args.nats or None, reply_timeout=args.reply_timeout,
                          auth_token=os.environ.get("TWILIO_AUTH_TOKEN") or None)
    return placed, result


def run(args: argparse.Namespace) -> int:
    """0 when the call was placed (and, simulated, went without problems); 1 otherwise."""
    token = args.token or os.environ.get("RINGLINE_TELEPHONY_API_TOKEN", "")
    if not token:
        print("ringline dial: no token: pass --token or set RINGLINE_TELEPHONY_API_TOKEN "
              "(the edge must be started with the same)", file=sys.stderr)
        return 2
    if args.machine and not args.simulate:
        print("ringline dial: --machine only makes sense with --simulate", file=sys.stderr)
        return 2
    try:
        placed, result = asyncio.run(_run(args, token))
    except DialError as exc:
        print(f"ringline dial: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"placed": placed, "call": result.to_dict() if result else None}, indent=2, default=str))
    else:
        how = "simulated" if placed.get("simulated") else "placed through Twilio"
        print(f"outbound call {placed['id']} to {placed['to']} by agent {placed['agent']} {how}: "
              f"CallSid {placed['call_sid']}")
        if result is not None:
            print(format_result(result))
    return 0 if result is None or result.ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ringline dial", description=__doc__.splitlines()[0])
    configure(parser)
    return run(parser.parse_args(argv))
