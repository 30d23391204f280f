"""What one agent turn said and did, round by round (one LLM request each), and how that enters
the call's history (pure, no I/O).

A round holds the chunks it said, as (seq, text), and the tool calls that ended it with their
results. In the history a round with complete tool results becomes an exchange (the words
before the calls, the calls, each answer); the rest is plain agent text. An interrupted turn
keeps only the chunks up to the last one heard, and ends with the interruption note.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .conversation import Conversation
from .llm.base import Messages, ToolCall
from .tools import ToolResult


@dataclass
class Round:
    said: list[tuple[int, str]] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    results: list[ToolResult] = field(default_factory=list)


def exchange_parts(current: Round) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in current.calls]
    results = [{"tool_call_id": r.call.id, "name": r.call.name, "content": r.content, "is_error": not r.ok}
               for r in current.results]
    return calls, results


def exchange_messages(current: Round) -> Messages:
    """The round's tool calls and answers as messages for the next request."""
    calls, results = exchange_parts(current)
    said = " ".join(t for _, t in current.said)
    return [{"role": "assistant", "content": said, "tool_calls": calls},
            *({"role": "tool", **r} for r in results)]


def remember(rounds: list[Round], history: Conversation, turn_id: str, heard_seq: int | None = None) -> None:
    """Write a turn into the history: all it said (`heard_seq` None) or up to the chunk `heard_seq`."""
    pending: list[str] = []
    heard_any = False
    for current in rounds:
        words = [t for seq, t in current.said if heard_seq is None or seq <= heard_seq]
        heard_any = heard_any or bool(words)
        pending += words
        if current.calls and len(current.results) == len(current.calls):
            calls, results = exchange_parts(current)
            history.add_tool_exchange(" ".join(pending), calls, results, turn_id)
            pending = []
    if heard_seq is None:
        history.add_agent(" ".join(pending), turn_id)
    else:
        history.add_agent_interrupted(" ".join(pending), turn_id, said_before=heard_any)
