"""One call's conversation history, as chat messages for the LLM (pure state, no I/O).

Long calls: the prompt carries the recent turns in full and folds older ones into notes in the
system prompt (a running summary and the call's structured state, see `context`), so a 30-minute
call neither overflows the model's context nor forgets how it started. Folds happen in batches
(down to `keep_messages`), never one message per turn: between folds the prompt only grows at
its end, so the local model reuses its evaluated prefix from turn to turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .context import CallState, Summary, digest, messages_tokens, notes

INTERRUPTED_NOTE = "[interrupted by the caller]"
INTERRUPTED_SILENT_NOTE = "[interrupted by the caller before saying anything]"


@dataclass(frozen=True)
class Utterance:
    role: str  # "user" (the caller), "assistant" (the agent) or "tool" (a tool's answer)
    text: str
    turn_id: str = ""
    interrupted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # tool_calls / tool_call_id, name, is_error


def interrupted_text(heard: str, said_before: bool = False) -> str:
    """What an interrupted agent turn becomes in the history: the part heard, cut off, noted.

    `said_before`: the turn was heard earlier (before a tool call), just not in this part.
    """
    heard = heard.strip()
    if heard or said_before:
        return f"{heard} — {INTERRUPTED_NOTE}".strip()
    return INTERRUPTED_SILENT_NOTE


@dataclass(frozen=True)
class Fold:
    """Turns just folded into the summary, for the LLM to summarise (`Conversation.apply_summary`)."""

    generation: int
    part: int  # the summary part that holds these messages (first sentences until the LLM's summary)
    lines: tuple[tuple[str, str], ...]  # (role, text) of the folded messages


class Conversation:
    """The system prompt plus the call's turns, oldest first.

    Consecutive plain utterances of one speaker are merged (a caller who speaks twice while
    the agent was interrupted is one user message). Tool exchanges (an assistant message with
    `tool_calls`, then the `tool` answers) are kept whole. At most `max_messages` recent messages
    (and about `max_tokens` estimated prompt tokens) are sent to the model, starting with a caller
    message, so the prompt stays within context and never opens with half a tool exchange; older
    ones are folded into the notes. `memory` is what the agent remembers about the caller.
    """

    def __init__(self, system_prompt: str, max_messages: int = 20, *, keep_messages: int | None = None,
                 max_tokens: int | None = None, summary_chars: int = 600,
                 not_names: frozenset[str] = frozenset()) -> None:
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.keep_messages = max(1, min(keep_messages or max_messages // 2, max_messages - 1))
        self.max_tokens = max_tokens
        self.turns: list[Utterance] = []
        self.start = 0  # turns before this index are folded into the notes
        self.summary = Summary(max_chars=summary_chars)
        self.state = CallState(not_names=not_names)
        self.generation = 0  # folds so far
        self._memory = ""
        self._notes = ""  # rendered at each fold, so the prompt's prefix holds still in between

    @property
    def memory(self) -> str:
        return self._memory

    @memory.setter
    def memory(self, block: str) -> None:
        self._memory = block.strip()

    def system_content(self) -> str:
        return "\n\n".join(part for part in (self.system_prompt, self._memory, self._notes) if part)

    def add_caller(self, text: str, turn_id: str = "") -> None:
        self.state.on_caller(text.strip())
        self._add(Utterance("user", text.strip(), turn_id))

    def add_caller_event(self, description: str, turn_id: str = "") -> None:
        """Something the caller did that is not speech, e.g. "pressed 1" -> "[caller pressed 1]"."""
        self.add_caller(f"[caller {description.strip()}]", turn_id)

    def add_agent(self, text: str, turn_id: str = "") -> None:
        self.state.on_agent(text)
        self._add(Utterance("assistant", text.strip(), turn_id))

    def add_agent_interrupted(self, heard: str, turn_id: str = "", said_before: bool = False) -> None:
        """An agent turn the caller cut off: only what they heard, ending with a note."""
        self.state.on_agent(heard, answered=len(heard.split()) > 6)
        self._add(Utterance("assistant", interrupted_text(heard, said_before), turn_id, interrupted=True))

    def add_tool_exchange(self, said: str, calls: list[dict[str, Any]], results: list[dict[str, Any]],
                          turn_id: str = "") -> None:
        """The agent's words before its tool calls, the calls, and each tool's answer.

        `calls`: `{"id", "name", "arguments"}`; `results`: `{"tool_call_id", "name", "content",
        "is_error"}`, one per call.
        """
        self.turns.append(Utterance("assistant", said.strip(), turn_id, extra={"tool_calls": list(calls)}))
        for result in results:
            extra: dict[str, Any] = {k: result[k] for k in ("tool_call_id", "name", "is_error") if k in result}
            self.turns.append(Utterance("tool", str(result.get("content", "")), turn_id, extra=extra))

    def add_greeting(self, text: str, turn_id: str = "") -> None:
        """The agent's opening line: first in the history even if the caller spoke first."""
        text = text.strip()
        if text:
            self.turns.insert(self.start, Utterance("assistant", text, turn_id))

    def replace_agent(self, turn_id: str, heard: str) -> bool:
        """Cut the agent turn `turn_id` (already in the history) down to what was heard."""
        for i in range(len(self.turns) - 1, -1, -1):
            turn = self.turns[i]
            if turn.role == "assistant" and turn.turn_id == turn_id and not turn.extra:
                self.turns[i] = Utterance("assistant", interrupted_text(heard), turn_id, interrupted=True)
                return True
        return False

    def _add(self, utterance: Utterance) -> None:
        if not utterance.text:
            return
        last = self.turns[-1] if self.turns else None
        if last is not None and last.role == utterance.role and not last.extra and utterance.role != "tool":
            merged = f"{last.text} {utterance.text}"
            self.turns[-1] = Utterance(utterance.role, merged, last.turn_id or utterance.turn_id,
                                       interrupted=last.interrupted or utterance.interrupted)
        else:
            self.turns.append(utterance)

    def messages_with_caller(self, text: str) -> list[dict[str, Any]]:
        """The messages as they will be once the caller has said `text` (for a preemptive turn)."""
        probe = Conversation(self.system_prompt, self.max_messages, keep_messages=self.keep_messages,
                             max_tokens=self.max_tokens, summary_chars=self.summary.max_chars)
        probe.turns, probe.start, probe._memory, probe._notes = list(self.turns), self.start, self._memory, self._notes
        probe.summary.parts, probe.state = list(self.summary.parts), self.state
        probe._add(Utterance("user", text.strip()))
        return probe.messages()

    def messages(self) -> list[dict[str, Any]]:
        """The prompt: system prompt (with the memory and notes blocks) and the recent turns.
        Folds first when the recent turns are over `max_messages` or `max_tokens`."""
        if len(self.turns) - self.start > self.max_messages:
            self.fold(self.max_messages)  # the session folds in batches between turns; this is the backstop
        keep = self.keep_messages
        while self.max_tokens and keep >= 1 and messages_tokens(self._messages()) > self.max_tokens:
            self.fold(keep)
            keep //= 2
        return self._messages()

    def _messages(self) -> list[dict[str, Any]]:
        history = [{"role": u.role, "content": u.text, **u.extra} for u in self.turns[self.start:]]
        return [{"role": "system", "content": self.system_content()}, *history]

    # -- folding ------------------------------------------------------------------------------

    def fold_due(self, coming: int = 2) -> bool:
        """Folding now keeps the next `coming` messages (the agent's reply, the caller's next
        words) from forcing a fold inside a turn."""
        if len(self.turns) - self.start + coming > self.max_messages:
            return True
        return bool(self.max_tokens) and messages_tokens(self._messages()) > 0.8 * (self.max_tokens or 0)

    def fold(self, keep: int | None = None) -> Fold | None:
        """Fold all but the last `keep` messages (from a caller message on) into the notes; the
        summary of them is first sentences until `apply_summary` brings a better one."""
        keep = self.keep_messages if keep is None else keep
        cut = max(self.start, len(self.turns) - keep)
        while cut < len(self.turns) and self.turns[cut].role != "user":
            cut += 1
        if cut >= len(self.turns) or cut <= self.start:
            return None
        folded = tuple((u.role, u.text) for u in self.turns[self.start:cut])
        part = self.summary.add(digest(list(folded)))
        self.start = cut
        self.generation += 1
        self._notes = notes(self.summary.text, self.state)
        return Fold(self.generation, part, folded)

    def apply_summary(self, fold: Fold, text: str) -> bool:
        """The LLM's summary of the messages of `fold`, in place of their first sentences."""
        if not text.strip() or not self.summary.replace(fold.part, text):
            return False
        self._notes = notes(self.summary.text, self.state)
        return True

    # -- checkpoints --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The history as plain data (a checkpoint): turns, fold point, notes, caller memory."""
        state = {k: list(v) for k, v in vars(self.state).items() if isinstance(v, list)}
        return {
            "turns": [{"role": u.role, "text": u.text, "turn_id": u.turn_id, "interrupted": u.interrupted,
                       "extra": dict(u.extra)} for u in self.turns],
            "start": self.start, "generation": self.generation, "summary": list(self.summary.parts),
            "call_state": {**state, "caller_name": self.state.caller_name},
            "memory": self._memory, "notes": self._notes,
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Take back what `to_dict` wrote (on the replica that carries the call on)."""
        self.turns = [Utterance(t["role"], t["text"], t.get("turn_id", ""), bool(t.get("interrupted")),
                                dict(t.get("extra") or {})) for t in data.get("turns", [])]
        self.start, self.generation = int(data.get("start", 0)), int(data.get("generation", 0))
        self.summary.parts = list(data.get("summary", []))
        for name, value in (data.get("call_state") or {}).items():
            if hasattr(self.state, name) and name != "not_names":
                setattr(self.state, name, list(value) if isinstance(value, list) else value)
        self._memory, self._notes = data.get("memory", ""), data.get("notes", "")

    def last(self, role: str) -> Utterance | None:
        return next((u for u in reversed(self.turns) if u.role == role), None)

    def __len__(self) -> int:
        return len(self.turns)
