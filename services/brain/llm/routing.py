"""Which Claude model answers a turn: the fast one, unless a plain rule asks for the strong one.

The rule looks only at what the caller just said and at the agent's setting, never at the model's
own view of the question (that would cost a round trip before every answer):
- `always` / `never`: the agent's setting decides every turn;
- `rule`: the strong model when the utterance is longer than `min_words` words, or contains one
  of `keywords` (whole words or phrases, any case).
Pure, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

RouteMode = Literal["rule", "always", "never"]

_WORD = re.compile(r"[A-Za-z0-9']+")


@dataclass(frozen=True)
class Route:
    strong: bool
    why: str


@dataclass(frozen=True)
class RoutingRule:
    mode: RouteMode = "rule"
    min_words: int = 30
    """More words than this asks for the strong model; 0 turns the length rule off."""
    keywords: tuple[str, ...] = ()

    def choose(self, utterance: str) -> Route:
        if self.mode == "always":
            return Route(True, "always strong")
        if self.mode == "never":
            return Route(False, "fast only")
        words = [w.lower() for w in _WORD.findall(utterance)]
        if self.min_words and len(words) > self.min_words:
            return Route(True, f"{len(words)} words")
        spaced = f" {' '.join(words)} "
        for keyword in self.keywords:
            phrase = " ".join(w.lower() for w in _WORD.findall(keyword))
            if phrase and f" {phrase} " in spaced:
                return Route(True, f"keyword {keyword!r}")
        return Route(False, "fast")


def last_caller_text(messages: Sequence[dict[str, Any]]) -> str:
    """What the caller said last (tool answers and the agent's words are skipped)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return str(message.get("content") or "")
    return ""
