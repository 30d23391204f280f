"""Caller memory: what an agent remembers about a caller from one call to the next.

The memory service keeps one `CallerMemory` per agent and caller number, so an agent never sees
what a caller told another agent. The brain reads it when a call starts and records each call
into it afterwards; a caller can ask to be forgotten. Request/reply subjects:

- `memory.recall.get`: RecallGetRequest -> RecallGetReply
- `memory.recall.put`: RecallPutRequest (one call's notes) -> RecallPutReply (the merged memory)
- `memory.recall.forget`: RecallForgetRequest -> RecallForgetReply
- `memory.recall.list`: RecallListRequest -> RecallListReply (newest first)

`merge_call` is the one rule for folding a call's notes into what was remembered; the memory
service applies it atomically, so a call whose memory could not be read at its start still adds
to the record instead of replacing it.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, Field

FactKind = Literal["name", "preference", "open", "note"]

# How many facts of each kind a memory keeps (newest first); more are dropped.
FACT_LIMITS: dict[str, int] = {"name": 1, "preference": 5, "open": 3, "note": 5}
EARLIER_SUMMARIES = 3
MAX_TEXT = 300


class Fact(BaseModel):
    """One thing worth remembering: the caller's name, a preference, something still open (a
    promise, a booking to follow up), or a note."""

    kind: FactKind
    text: str = Field(min_length=1, max_length=MAX_TEXT)


class CallerMemory(BaseModel):
    type: Literal["memory.caller"] = "memory.caller"
    v: int = 1
    agent_id: str
    caller: str  # the caller's number, normalized (+15550100001)
    summary: str = ""  # the last call, in a sentence or two
    earlier: list[str] = Field(default_factory=list)  # summaries of the calls before it, newest first
    facts: list[Fact] = Field(default_factory=list)
    calls: int = 0  # calls recorded into this memory
    first_call_at: float = 0.0
    updated_at: float = 0.0
    last_call_id: str = ""

    def of(self, kind: FactKind) -> list[str]:
        return [f.text for f in self.facts if f.kind == kind]

    @property
    def name(self) -> str:
        names = self.of("name")
        return names[0] if names else ""


class CallNotes(BaseModel):
    """What one call adds to a caller's memory (made by the brain after the call)."""

    call_id: str
    agent_id: str
    caller: str
    summary: str = ""
    facts: list[Fact] = Field(default_factory=list)
    followed_up: list[str] = Field(default_factory=list)  # open items the agent asked about: done with
    at: float = Field(default_factory=time.time)


def _key(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .!?")


def merge_call(memory: CallerMemory | None, notes: CallNotes) -> CallerMemory:
    """`memory` with one more call in it. The call's facts come first (a new name replaces the
    old one); open items the agent followed up are dropped; a call already recorded (same call
    id) replaces its own notes instead of counting twice."""
    base = memory or CallerMemory(agent_id=notes.agent_id, caller=notes.caller, first_call_at=notes.at)
    again = bool(base.last_call_id) and base.last_call_id == notes.call_id
    done = {_key(text) for text in notes.followed_up}
    kept: list[Fact] = []
    seen: set[tuple[str, str]] = set()
    counts: dict[str, int] = {}
    older = [f for f in base.facts if not (f.kind == "open" and _key(f.text) in done)]
    for fact in [*notes.facts, *older]:
        key = (fact.kind, _key(fact.text))
        if not key[1] or key in seen or counts.get(fact.kind, 0) >= FACT_LIMITS[fact.kind]:
            continue
        seen.add(key)
        counts[fact.kind] = counts.get(fact.kind, 0) + 1
        kept.append(Fact(kind=fact.kind, text=fact.text.strip()[:MAX_TEXT]))
    summary, earlier = notes.summary.strip()[:MAX_TEXT * 2], list(base.earlier)
    if not summary:
        summary = base.summary
    elif base.summary and not again:
        earlier = [base.summary, *earlier]
    return base.model_copy(update={
        "summary": summary,
        "earlier": earlier[:EARLIER_SUMMARIES],
        "facts": kept,
        "calls": base.calls if again else base.calls + 1,
        "first_call_at": base.first_call_at or notes.at,
        "updated_at": max(notes.at, base.updated_at),
        "last_call_id": notes.call_id,
    })


class RecallGetRequest(BaseModel):
    agent_id: str
    caller: str


class RecallGetReply(BaseModel):
    found: bool
    memory: CallerMemory | None = None
    error: str = ""


class RecallPutRequest(BaseModel):
    notes: CallNotes


class RecallPutReply(BaseModel):
    ok: bool
    memory: CallerMemory | None = None
    error: str = ""


class RecallForgetRequest(BaseModel):
    agent_id: str
    caller: str


class RecallForgetReply(BaseModel):
    forgotten: bool  # there was a memory, and it is gone
    error: str = ""


class RecallListRequest(BaseModel):
    agent_id: str = ""  # empty: every agent's
    limit: int = Field(default=100, ge=1, le=10_000)


class RecallListReply(BaseModel):
    memories: list[CallerMemory] = Field(default_factory=list)
