"""Folding a long call's older turns, between turns and off the critical path.

After each agent turn is generated, `FoldKeeper.after_turn` folds the history when the next
exchange would go over its limits (the deterministic fold: first sentences and the call's state,
at once). Then, when `context_summary` is "llm", the brain's own model summarises the folded
turns in the background while the caller listens to the reply; its summary replaces their first
sentences. A caller turn that starts meanwhile cancels it (the turn goes first on the model; the
rule-made notes stay).
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from ringline.contracts import subjects
from ringline.contracts.events import LLM_USAGE
from ringline.contracts.messages import CallEvent
from ringline.contracts.runtime import CallBus

from .accounting import usage_data
from .conversation import Conversation, Fold
from .extract import mentioned_in
from .llm.base import ChatModel, LLMError, StreamStats
from .summary import complete

log = logging.getLogger("ringline.brain.folding")

# Written for the 0.5B local model: one worked example, only the folded part (given the summary so
# far it copied the transcript back), and a short last message (a chain's routing picks its fast model).
FOLD_SYSTEM = ("You summarise part of a phone call in one or two short sentences: what the caller asked or "
               "wanted, and what the agent answered. Keep names, dates, times and numbers.")
FOLD_ASK = "Summarise this part in one or two short sentences."
FOLD_EXAMPLE: list[dict[str, Any]] = [
    {"role": "user", "content": "Caller: Do you have a table for two on Friday at eight?\nAgent: Yes, Friday at "
                                "eight is free. Shall I book it?\nCaller: Yes please, under Lee. Is there parking?"
                                "\nAgent: There is a car park behind the building."},
    {"role": "user", "content": FOLD_ASK},
    {"role": "assistant", "content": "Lee booked a table for two on Friday at eight and asked about parking; "
                                     "there is a car park behind the building."},
]
MAX_FOLD_CHARS = 2500


def fold_messages(fold: Fold) -> list[dict[str, Any]]:
    lines = "\n".join(f"{'Caller' if role == 'user' else 'Agent'}: {text}" for role, text in fold.lines
                      if role in ("user", "assistant") and text.strip())[-MAX_FOLD_CHARS:]
    return [{"role": "system", "content": FOLD_SYSTEM}, *FOLD_EXAMPLE, {"role": "user", "content": lines},
            {"role": "user", "content": FOLD_ASK}]


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


_EXAMPLE_WORDS = _words(" ".join(m["content"] for m in FOLD_EXAMPLE))
_COMMON = frozenset("a and the about asked is was to for on at of it i you he she they there".split())


def usable(summary: str, fold: Fold) -> bool:
    """A summary that is short, not a copy of the transcript or of the example, and about these turns."""
    low = summary.lower()
    source = "\n".join(text for _, text in fold.lines)
    stems = {w[:4] for w in _words(source)}
    copied = {w for w in _words(summary) & _EXAMPLE_WORDS if w[:4] not in stems and w not in _COMMON}
    return (0 < len(summary) <= 400 and "caller:" not in low and "agent:" not in low and not copied
            and mentioned_in(summary, source, 0.6))


class FoldKeeper:
    def __init__(self, bus: CallBus, history: Conversation, model: ChatModel, use_llm: bool,
                 max_tokens: int = 90, timeout_s: float = 15.0) -> None:
        self.bus = bus
        self.history = history
        self.model = model
        self.use_llm = use_llm
        self.max_tokens = max_tokens
        self.timeout_s = timeout_s
        self.summaries = 0  # LLM summaries that made it into the notes
        self._task: asyncio.Task[Any] | None = None

    def after_turn(self, turn_id: str = "") -> None:
        if self.bus.closed or not self.history.fold_due():
            return
        fold = self.history.fold()
        if fold is None:
            return
        log.info("call %s: folded %d older message(s) into the notes (fold %d)", self.bus.call_id,
                 len(fold.lines), fold.generation)
        if self.use_llm:
            self.cancel()
            self._task = self.bus.spawn(self._summarise(fold, turn_id), f"fold-{fold.generation}")

    def cancel(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _summarise(self, fold: Fold, turn_id: str) -> None:
        stats = StreamStats()
        try:
            text = await complete(self.model, fold_messages(fold), self.max_tokens, self.timeout_s, stats)
        except (LLMError, TimeoutError) as exc:
            log.info("call %s: no LLM summary for fold %d (%s); first sentences stay", self.bus.call_id,
                     fold.generation, exc)
            return
        finally:
            await self._report(stats, turn_id)
        if usable(text, fold) and self.history.apply_summary(fold, text):
            self.summaries += 1
            log.info("call %s: fold %d summarised by the model: %r", self.bus.call_id, fold.generation, text)

    async def _report(self, stats: StreamStats, turn_id: str) -> None:
        usage = stats.usage()
        if usage is None or not turn_id or self.bus.closed:
            return
        event = CallEvent(call_id=self.bus.call_id, name=LLM_USAGE, turn_id=turn_id,
                          data={"usage": usage_data(usage), "purpose": "fold"})
        await self.bus.publish(event, subjects.event(self.bus.call_id))
