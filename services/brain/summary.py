"""After a call: a short summary and a list of facts, made by the brain's own LLM and checked
against what the caller actually said, with cheap rules underneath.

The prompt is written for the local 0.5B model: two worked examples as chat turns, four fixed
lines to fill in (Summary, Name, Open, Likes), and a short last message, so a Claude chain's
routing rule picks its fast model. What the model writes is kept only when it is grounded: a
name or an open item must appear in the caller's own words, a summary must mostly use words of
the call. The caller's name and what they want come from `extract` first; the model only adds
what the rules cannot see. Without a usable answer the summary is rule-made ("Sam called and
wanted to book a table for Tuesday.").
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ringline.contracts.messages.recall import Fact

from . import extract
from .llm.base import ChatModel, LLMError, Messages, StreamStats, ToolCall

log = logging.getLogger("ringline.brain.summary")

MAX_CALL_CHARS = 3000  # of the call's text in the prompt (its end; the start is in the notes)

NOTES_SYSTEM = ("You take short notes about phone calls. Answer with exactly four lines: Summary, Name, "
                "Open, Likes. Write none when the call does not say.")
NOTES_ASK = "Notes on this call, four lines."
NOTES_EXAMPLES: Messages = [
    {"role": "user", "content": "Agent: Hello, how can I help?\nCaller: Hi, I'm Tom. Can I get a haircut on "
                                "Monday morning? I like it short.\nAgent: Yes, Monday at nine works. See you "
                                "then.\nCaller: Great, bye."},
    {"role": "user", "content": NOTES_ASK},
    {"role": "assistant", "content": "Summary: Tom booked a haircut for Monday at nine.\nName: Tom\n"
                                     "Open: haircut on Monday at nine\nLikes: short hair"},
    {"role": "user", "content": "Agent: Hello, how can I help?\nCaller: How late are you open today?\n"
                                "Agent: We are open until six.\nCaller: Thanks."},
    {"role": "user", "content": NOTES_ASK},
    {"role": "assistant", "content": "Summary: The caller asked about opening hours.\nName: none\nOpen: none\n"
                                     "Likes: none"},
]
_LINE = re.compile(r"^\s*(summary|name|open|likes?)\s*:\s*(.*?)\s*$", re.IGNORECASE | re.MULTILINE)
_NONE = frozenset({"", "none", "unknown", "n/a", "na", "nothing", "no", "-", "not mentioned", "not given"})


@dataclass
class CallText:
    """What the summary works from: the call as lines, and the caller's own words."""

    lines: list[tuple[str, str]]  # (role, text) of the recent messages, oldest first
    earlier: str = ""  # the summary of the folded part of a long call
    caller_name: str = ""  # from the rules, over the whole call
    wants: list[str] = field(default_factory=list)
    caller_words: str = ""  # everything the caller said

    @property
    def caller_spoke(self) -> bool:
        return bool(self.caller_words.strip())

    def transcript(self) -> str:
        lines = [f"{'Caller' if role == 'user' else 'Agent'}: {text}" for role, text in self.lines
                 if role in ("user", "assistant") and text.strip()]
        text = "\n".join(lines)
        if len(text) > MAX_CALL_CHARS:
            text = text[-MAX_CALL_CHARS:].split("\n", 1)[-1]
        return f"Earlier: {self.earlier}\n{text}" if self.earlier else text


@dataclass
class Notes:
    summary: str
    facts: list[Fact]
    by: str  # "llm" or "rules"
    stats: StreamStats | None = None


async def complete(model: ChatModel, messages: Messages, max_tokens: int, timeout_s: float,
                   stats: StreamStats | None = None) -> str:
    """The model's whole answer as text (tool calls ignored), within `timeout_s`."""
    pieces: list[str] = []
    async with asyncio.timeout(timeout_s):
        async for piece in model.stream(messages, max_tokens, stats=stats, first_token_timeout=timeout_s,
                                        stall_timeout=timeout_s):
            if not isinstance(piece, ToolCall):
                pieces.append(piece)
    return "".join(pieces).strip()


def parse_lines(answer: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for key, value in _LINE.findall(answer):
        key = "likes" if key.lower().startswith("like") else key.lower()
        value = value.strip() if key == "summary" else value.strip().strip(".").strip()
        if key not in found and value.lower() not in _NONE:
            found[key] = value
    return found


def rule_summary(call: CallText) -> str:
    who = call.caller_name or "The caller"
    if call.wants:
        return f"{who} called and wanted to {extract.second_person(call.wants[-1])}."
    asked = [q for role, text in call.lines if role == "user" for q in extract.questions(text)]
    if asked:
        return f"{who} asked: {extract.first_sentence(asked[0], 100)}"
    said = next((text for role, text in call.lines if role == "user" and not text.startswith("[")), "")
    return f"{who} said: {extract.first_sentence(said, 100)}" if said else f"{who} called."


def notes_from(call: CallText, answer: str) -> tuple[str, list[Fact]]:
    """The summary and facts, the model's `answer` kept only where it is grounded in the call."""
    parsed = parse_lines(answer)
    everything = "\n".join([call.earlier, *(text for _, text in call.lines)])
    summary = parsed.get("summary", "")
    if (not summary or len(summary) > 300 or "caller:" in summary.lower() or "agent:" in summary.lower()
            or not extract.mentioned_in(summary, everything)):
        summary = rule_summary(call)
    facts: list[Fact] = []
    name = call.caller_name
    model_name = parsed.get("name", "").split(" ")[0].strip(",.")
    if not name and model_name and re.search(rf"\b{re.escape(model_name)}\b", call.caller_words, re.IGNORECASE):
        name = model_name[:1].upper() + model_name[1:]
    if name:
        facts.append(Fact(kind="name", text=name))
    opened = [*reversed(call.wants)]
    model_open = parsed.get("open", "")
    if model_open and extract.mentioned_in(model_open, call.caller_words, 0.6):
        opened.append(model_open)
    if opened:
        facts.append(Fact(kind="open", text=opened[0][:120]))
    likes = parsed.get("likes", "")
    if likes and extract.mentioned_in(likes, call.caller_words, 0.6):
        facts.append(Fact(kind="preference", text=likes[:120]))
    return summary, facts


async def summarise(call: CallText, model: ChatModel | None, max_tokens: int, timeout_s: float) -> Notes:
    """The call's notes: the model's, checked, or the rules' when it fails, is slow or is absent."""
    if not call.caller_spoke:
        return Notes("The caller did not say anything.", [], "rules")
    answer, stats = "", StreamStats()
    if model is not None:
        messages: Messages = [{"role": "system", "content": NOTES_SYSTEM}, *NOTES_EXAMPLES,
                              {"role": "user", "content": call.transcript()}, {"role": "user", "content": NOTES_ASK}]
        try:
            answer = await complete(model, messages, max_tokens, timeout_s, stats)
        except (LLMError, TimeoutError) as exc:
            log.warning("call summary by the model failed (%s: %s); using the rules", type(exc).__name__, exc)
    summary, facts = notes_from(call, answer)
    by = "llm" if answer and summary != rule_summary(call) else "rules"
    return Notes(summary, facts, by, stats if answer else None)


def call_text(lines: Sequence[tuple[str, str]], earlier: str, caller_name: str, wants: Sequence[str],
              all_caller_words: Sequence[str]) -> CallText:
    return CallText(lines=list(lines), earlier=earlier, caller_name=caller_name, wants=list(wants),
                    caller_words=" ".join(w for w in all_caller_words if not w.startswith("[caller ")))
