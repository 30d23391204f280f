"""`ringline agents [FILE]`: validate the agents file and list its agents."""

from __future__ import annotations

import argparse
import os
import sys

from ringline.contracts.agents import Agent, AgentBook, AgentsFileError, load_agents


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", nargs="?", help="the agents YAML file (default $RINGLINE_AGENTS_FILE)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = args.file or os.environ.get("RINGLINE_AGENTS_FILE")
    if not path:
        print("no agents file: pass one, or set RINGLINE_AGENTS_FILE (without one, a single 'default' "
              "agent answers every number with the services' settings)", file=sys.stderr)
        return 2
    try:
        book = load_agents(path)
    except AgentsFileError as exc:
        print(f"invalid agents file {exc}", file=sys.stderr)
        return 1
    print(describe(book))
    return 0


def describe(book: AgentBook) -> str:
    lines = [f"{len(book.agents)} agent(s) in {book.source}; unknown numbers go to {book.fallback.id!r}", ""]
    for agent in book.agents:
        lines.append(f"{agent.id}  ({agent.name or 'unnamed'})")
        lines.append(f"  numbers : {', '.join(agent.numbers) or '-'}")
        lines.append(f"  callers : {', '.join(agent.allow) if agent.allow else 'everyone'}")
        lines.append(f"  hours   : {_hours(agent)}")
        lines.append(f"  limits  : {_limits(agent)}")
        extras = [f"tools {', '.join(t.name for t in agent.tools)}" if agent.tools else "",
                  f"transfer to {agent.transfer_number}" if agent.transfer_number else "",
                  f"{len(agent.reports)} report webhook(s)" if agent.reports else "",
                  "records audio" if agent.record_audio else ""]
        if any(extras):
            lines.append(f"  also    : {'; '.join(e for e in extras if e)}")
    return "\n".join(lines)


def _hours(agent: Agent) -> str:
    if agent.hours is None:
        return "always open"
    spans = ", ".join(f"{days} {span}" for days, span in agent.hours.open.items()) or "never open"
    return f"{spans} ({agent.hours.timezone})"


def _limits(agent: Agent) -> str:
    limits = agent.limits
    parts = [f"calls up to {limits.max_call_s:g}s"]
    parts.append(f"{limits.max_concurrent_calls} at once" if limits.max_concurrent_calls else "no concurrency limit")
    parts.append(f"{limits.daily_spend:g}/day" if limits.daily_spend is not None else "no spend cap")
    return ", ".join(parts)
