"""`ringline memory`: what the agents remember about their callers, from the memory service.

    ringline memory                                  # every remembered caller, newest first
    ringline memory --agent reception                # one agent's callers
    ringline memory show +15550100001 --agent reception
    ringline memory forget +15550100001 --agent reception

A caller's memory belongs to one agent, so `show` and `forget` name it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime

import nats
from pydantic import BaseModel

from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack, unpack
from ringline.contracts.messages.recall import (
    CallerMemory,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
    RecallListReply,
    RecallListRequest,
)

from .nats_config import DEFAULT_NATS_URL, client_url, connect_client, safe_url
from .records import MemoryUnavailable


async def _ask(nats_url: str, subject: str, request: BaseModel, timeout: float = 5.0) -> object:
    try:
        nc = await connect_client(nats_url)
    except Exception as exc:
        raise MemoryUnavailable(f"cannot reach NATS at {safe_url(nats_url)}: {exc}") from exc
    try:
        reply = await nc.request(subject, pack(request), timeout=timeout, headers={"content-type": CONTENT_TYPE})
    except (nats.errors.NoRespondersError, nats.errors.TimeoutError) as exc:
        raise MemoryUnavailable(f"the memory service did not answer on {subject}") from exc
    finally:
        await nc.close()
    return unpack(reply.data)


async def list_memories(nats_url: str, agent_id: str = "", limit: int = 100) -> list[CallerMemory]:
    data = await _ask(nats_url, subjects.MEMORY_RECALL_LIST, RecallListRequest(agent_id=agent_id, limit=limit))
    return RecallListReply.model_validate(data).memories


async def get_memory(nats_url: str, agent_id: str, caller: str) -> RecallGetReply:
    data = await _ask(nats_url, subjects.MEMORY_RECALL_GET, RecallGetRequest(agent_id=agent_id, caller=caller))
    return RecallGetReply.model_validate(data)


async def forget(nats_url: str, agent_id: str, caller: str) -> RecallForgetReply:
    data = await _ask(nats_url, subjects.MEMORY_RECALL_FORGET, RecallForgetRequest(agent_id=agent_id, caller=caller))
    return RecallForgetReply.model_validate(data)


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M") if ts else "-"


def format_memories(memories: list[CallerMemory]) -> str:
    if not memories:
        return "no callers remembered"
    lines = [f"{'AGENT':<12} {'CALLER':<16} {'CALLS':>5}  {'LAST CALL':<16} {'NAME':<12} SUMMARY"]
    for m in memories:
        lines.append(f"{m.agent_id:<12} {m.caller:<16} {m.calls:>5}  {_clock(m.updated_at):<16} "
                     f"{m.name or '-':<12} {m.summary or '-'}")
    return "\n".join(lines)


def format_memory(m: CallerMemory) -> str:
    lines = [(f"caller {m.caller}  agent {m.agent_id}  {m.calls} call{'s' if m.calls != 1 else ''}  "
              f"first {_clock(m.first_call_at)}  last {_clock(m.updated_at)} ({m.last_call_id or '-'})")]
    if m.name:
        lines.append(f"  name:      {m.name}")
    if m.summary:
        lines.append(f"  last call: {m.summary}")
    for earlier in m.earlier:
        lines.append(f"  earlier:   {earlier}")
    labels = {"open": "open", "preference": "likes", "note": "note"}
    for fact in m.facts:
        if fact.kind != "name":
            lines.append(f"  {labels[fact.kind] + ':':<10} {fact.text}")
    return "\n".join(lines)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["list", "show", "forget"], default="list")
    parser.add_argument("number", nargs="?", help="show/forget: the caller's phone number")
    parser.add_argument("--agent", default="", help="the agent whose memory it is (list: all agents when unset)")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--nats", help=f"NATS URL (default $NATS_URL or {DEFAULT_NATS_URL})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    url = client_url(args.nats)
    if args.action != "list" and not (args.number and args.agent):
        print(f"usage: ringline memory {args.action} NUMBER --agent AGENT (a caller's memory belongs to one agent)",
              file=sys.stderr)
        return 2
    try:
        if args.action == "list":
            memories = asyncio.run(list_memories(url, args.agent, args.limit))
            print("[" + ",".join(m.model_dump_json() for m in memories) + "]" if args.json
                  else format_memories(memories))
            return 0
        if args.action == "show":
            reply = asyncio.run(get_memory(url, args.agent, args.number))
            if not reply.found or reply.memory is None:
                print(reply.error or f"agent {args.agent} remembers nothing about {args.number}", file=sys.stderr)
                return 1
            print(reply.memory.model_dump_json(indent=2) if args.json else format_memory(reply.memory))
            return 0
        gone = asyncio.run(forget(url, args.agent, args.number))
    except MemoryUnavailable as exc:
        print(f"{exc} (is `ringline up` running?)", file=sys.stderr)
        return 1
    if gone.error:
        print(gone.error, file=sys.stderr)
        return 1
    print(f"agent {args.agent} forgot {args.number}" if gone.forgotten
          else f"agent {args.agent} remembered nothing about {args.number}")
    return 0
