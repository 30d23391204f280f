"""What a long call keeps of its older turns (pure): a running summary and a small structured state.

`CallState` follows the whole call, turn by turn: the caller's name, the dates, times and numbers
mentioned, what the caller said they want, and the questions they asked that the agent has not
answered (its reply was cut off, the recovery line, or "let me check"). `Summary` holds what the
folded turns said: one part per fold, first sentences only (`digest`) until the LLM's summary of
them arrives. Both are rendered into the system prompt by `notes`; token counts are estimated
from characters (measured with Qwen2.5's tokenizer and chat template: ~4.0 characters a token
in English conversation; estimated at 3.5 to stay on the safe side).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from . import extract

CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 5  # <|im_start|>role\n ... <|im_end|>\n
_EVASIVE = re.compile(
    r"\b(?:i don't know|i do not know|i'm not sure|i am not sure|i can't help|i cannot help|let me check|"
    r"i'll (?:check|find out|look into)|get back to you|couldn't look that up|didn't catch that|"
    r"could you say it again|not able to (?:help|answer))\b", re.IGNORECASE)


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def messages_tokens(messages: list[dict]) -> int:
    """Estimated prompt tokens of chat messages (content plus the chat template's markers)."""
    return sum(estimate_tokens(str(m.get("content") or "")) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def _push(items: list[str], new: list[str], cap: int) -> None:
    for item in new:
        low = item.lower()
        for old in [o for o in items if o.lower() == low]:
            items.remove(old)
        items.append(item)
    del items[:-cap]


@dataclass
class CallState:
    """Entities and open questions of the whole call, kept up to date on every message."""

    caller_name: str = ""
    dates: list[str] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    wants: list[str] = field(default_factory=list)
    open_questions: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # asked in the caller's latest words, reply to come
    not_names: frozenset[str] = frozenset()

    def on_caller(self, text: str) -> None:
        if text.startswith("[caller "):
            return
        name = extract.caller_name(text, self.not_names)
        if name:
            self.caller_name = name
        _push(self.dates, extract.dates(text), 6)
        _push(self.numbers, extract.numbers(text), 6)
        _push(self.wants, extract.wants(text), 3)
        self.pending.extend(extract.first_sentence(q, 100) for q in extract.questions(text))

    def on_agent(self, text: str, answered: bool = True) -> None:
        """The agent's reply to the pending questions; `answered` False when it was cut off early."""
        if not self.pending:
            return
        if answered and not _EVASIVE.search(text):
            self.pending.clear()
            return
        _push(self.open_questions, self.pending, 3)
        self.pending.clear()

    def lines(self) -> list[str]:
        lines = []
        if self.caller_name:
            lines.append(f"The caller's name: {self.caller_name}.")
        if self.wants:
            lines.append("The caller wants: " + "; ".join(self.wants) + ".")
        if self.dates:
            lines.append("Dates and times mentioned: " + ", ".join(self.dates) + ".")
        if self.numbers:
            lines.append("Numbers mentioned: " + ", ".join(self.numbers) + ".")
        if self.open_questions:
            lines.append("Questions not answered yet: " + " ".join(self.open_questions))
        return lines


def digest(lines: list[tuple[str, str]], max_chars: int = 70, total_chars: int = 300) -> str:
    """Folded messages, a sentence each: "Caller: I'd like a table. Agent: Sure, for when?";
    the caller's first and the latest lines are kept when they are too many."""
    parts = []
    for role, text in lines:
        if role == "tool" or not text.strip():
            continue
        who = "Caller" if role == "user" else "Agent"
        parts.append(f"{who}: {extract.key_sentence(text, max_chars)}")
    text = " ".join(parts)
    while len(text) > total_chars and len(parts) > 2:
        del parts[1]
        text = " ".join([parts[0], "…", *parts[1:]])
    return text


@dataclass
class Summary:
    """What the folded turns said, one part per fold; when too long the first part (why they
    called) and the newest parts are kept."""

    max_chars: int = 600
    parts: list[str] = field(default_factory=list)

    def add(self, part: str) -> int:
        """Adds a part; its index."""
        self.parts.append(part.strip())
        return len(self.parts) - 1

    def replace(self, index: int, text: str) -> bool:
        """A better text (the LLM's summary) for part `index`."""
        if not 0 <= index < len(self.parts) or not text.strip():
            return False
        self.parts[index] = text.strip()
        return True

    @property
    def text(self) -> str:
        parts = [p for p in self.parts if p]
        if not parts:
            return ""
        kept = [parts[0]]
        room = self.max_chars - len(kept[0])
        tail: list[str] = []
        for part in reversed(parts[1:]):
            if len(part) + 2 > room:
                break
            tail.insert(0, part)
            room -= len(part) + 2
        if len(tail) < len(parts) - 1:
            kept.append("…")
        text = " ".join([*kept, *tail])
        return text if len(text) <= self.max_chars else text[: self.max_chars].rsplit(" ", 1)[0] + "…"


def notes(summary: str, state: CallState) -> str:
    """The block about the call's earlier part, for the system prompt."""
    lines = []
    if summary:
        lines.append(f"Earlier in this call: {summary}")
    lines += state.lines()
    if not lines:
        return ""
    return "Notes on this call so far (older turns are summarised):\n" + "\n".join(lines)
