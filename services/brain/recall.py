"""One call's view of what the agent remembers about the caller (`memory.recall.*`).

At call start the memory is fetched while the brain waits for the TTS stage, within
`recall_timeout_s`: a missing or slow memory service only means a call without memory, never a
late greeting. What is remembered goes into the system prompt (`memory_block`) and, when the
caller's name is known, into the greeting: a fixed template with the name, plus a follow-up
question made from the open item of the last call ("Did the table for Tuesday work out?"), so
the greeting needs no model and is as fast as the usual one.

For an outbound call the person is the number called (`callee`); for an inbound one, the caller.
Anonymous and withheld numbers are never remembered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.agents import normalize_number
from ringline.contracts.codec import unpack
from ringline.contracts.messages import CallStart
from ringline.contracts.messages.recall import (
    CallerMemory,
    RecallForgetReply,
    RecallForgetRequest,
    RecallGetReply,
    RecallGetRequest,
)
from ringline.contracts.runtime import CallBus

from .extract import second_person
from .settings import BrainSettings

log = logging.getLogger("ringline.brain.recall")

FORGET_TIMEOUT_S = 2.0
_NOUN_VERBS = frozenset("book reserve order get make schedule arrange buy have rent hire organise organize "
                        "plan set".split())
_OTHER_VERBS = frozenset("cancel change move return fix update check sort replace repair report renew pay "
                         "collect pick speak talk ask find learn see visit".split())
_DETERMINERS = frozenset("a an the some".split())


def person(call: CallStart) -> str:
    """The other party's number, normalized, or "" when it cannot be remembered."""
    number = call.callee if call.direction == "outbound" else call.caller
    try:
        return normalize_number(number)
    except ValueError:
        return ""


def follow_up(item: str, max_words: int = 8) -> str:
    """A question about an open item: "book a table for Tuesday" -> "Did the table for Tuesday
    work out?"; "cancel my order" -> "Last time you wanted to cancel your order. Did that get sorted?"."""
    words = item.strip().rstrip(".!?").split()[:max_words]
    if not words:
        return ""
    first = words[0].lower()
    if first in _OTHER_VERBS:
        return f"Last time you wanted to {second_person(' '.join(words))}. Did that get sorted?"
    if first in _NOUN_VERBS:
        words = words[1:]
    if not words:
        return ""
    head = words[0].lower()
    if head in ("my", "our"):
        words = ["your", *words[1:]]
    elif head in _DETERMINERS:
        words = ["the", *words[1:]]
    elif head != "your":
        words = ["the", *words]
    return f"Did {second_person(' '.join(words))} work out?"


def greeting_for(settings: BrainSettings, memory: CallerMemory | None) -> tuple[str, list[str]]:
    """The greeting for a caller the agent remembers (by name), and the open items it asks about;
    the agent's usual greeting when it does not know their name."""
    if memory is None or not memory.name:
        return settings.greeting, []
    opening = settings.returning_greeting.replace("{name}", memory.name).replace("{agent_name}", settings.agent_name)
    for item in memory.of("open"):
        question = follow_up(item)
        if question:
            return f"{opening} {question}", [item]
    return f"{opening} {settings.returning_question}".strip(), []


def memory_block(memory: CallerMemory) -> str:
    """What the agent remembers, for the system prompt (a few short lines)."""
    calls = f"{memory.calls} earlier call{'s' if memory.calls != 1 else ''}"
    lines = [(f"What you remember about this caller ({calls}; use it only when it helps, and never read "
              "these notes out):")]
    if memory.name:
        lines.append(f"Their name is {memory.name}.")
    if memory.summary:
        lines.append(f"Last call: {memory.summary}")
    if memory.earlier:
        lines.append(f"Before that: {memory.earlier[0]}")
    if memory.of("open"):
        lines.append("Still open from before: " + "; ".join(memory.of("open")) + ".")
    if memory.of("preference"):
        lines.append("They like: " + "; ".join(memory.of("preference")) + ".")
    if memory.of("note"):
        lines.append("Notes: " + "; ".join(memory.of("note")) + ".")
    return "\n".join(lines)


class CallerRecall:
    def __init__(self, bus: CallBus, call: CallStart, settings: BrainSettings) -> None:
        self.bus = bus
        self.agent_id = call.agent_id
        self.number = person(call)
        self.enabled = settings.recall and bool(self.number)
        self.timeout_s = settings.recall_timeout_s
        self.memory: CallerMemory | None = None
        self.followed_up: list[str] = []  # open items the greeting asked about
        self.forgotten = False  # the caller asked to be forgotten: keep nothing of this call
        self.fetch_ms: float | None = None
        self._task: asyncio.Task[Any] | None = None

    def start(self) -> None:
        if self.enabled and self._task is None:
            self._task = self.bus.spawn(self._fetch(), "recall")

    async def fetched(self) -> CallerMemory | None:
        """The caller's memory, once the fetch is done (bounded by its own timeout)."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        return self.memory

    async def _fetch(self) -> None:
        started = asyncio.get_running_loop().time()
        try:
            request = RecallGetRequest(agent_id=self.agent_id, caller=self.number)
            message = await self.bus.broker.request(request, subjects.MEMORY_RECALL_GET, timeout=self.timeout_s)
            reply = RecallGetReply.model_validate(unpack(message.body))
        except Exception as exc:  # a timeout, no responders, a malformed answer: a call without memory
            log.warning("call %s: no caller memory from the memory service in %.1fs (%s: %s)", self.bus.call_id,
                        self.timeout_s, type(exc).__name__, exc)
            return
        self.fetch_ms = round((asyncio.get_running_loop().time() - started) * 1000, 1)
        if reply.error:
            log.info("call %s: caller memory not available: %s", self.bus.call_id, reply.error)
        if reply.found and not self.forgotten:
            self.memory = reply.memory
            log.info("call %s: remembers caller %s (%d call(s)) in %.0f ms", self.bus.call_id, self.number,
                     reply.memory.calls if reply.memory else 0, self.fetch_ms)

    def greeting(self, settings: BrainSettings) -> str:
        """The greeting with what is remembered (after `fetched`); notes what it asks about."""
        greeting, self.followed_up = greeting_for(settings, self.memory)
        return greeting

    async def forget(self) -> bool:
        """Delete the caller's memory; True when the memory service confirmed it."""
        self.forgotten = True
        self.memory = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if not self.number:
            return True  # nothing can be remembered about this caller in the first place
        try:
            request = RecallForgetRequest(agent_id=self.agent_id, caller=self.number)
            message = await self.bus.broker.request(request, subjects.MEMORY_RECALL_FORGET, timeout=FORGET_TIMEOUT_S)
            reply = RecallForgetReply.model_validate(unpack(message.body))
        except Exception as exc:
            log.error("call %s: forgetting caller %s failed: %s: %s", self.bus.call_id, self.number,
                      type(exc).__name__, exc)
            return False
        if reply.error:
            log.error("call %s: forgetting caller %s failed: %s", self.bus.call_id, self.number, reply.error)
            return False
        log.info("call %s: forgot caller %s for agent %s", self.bus.call_id, self.number, self.agent_id)
        return True
