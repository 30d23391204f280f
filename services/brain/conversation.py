"""One call's conversation history, as chat messages for the LLM (pure state, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

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


class Conversation:
    """The system prompt plus the call's turns, oldest first.

    Consecutive plain utterances of one speaker are merged (a caller who speaks twice while
    the agent was interrupted is one user message). Tool exchanges (an assistant message with
    `tool_calls`, then the `tool` answers) are kept whole. Only the last `max_messages` are
    sent to the model, starting with a caller message, so the prompt stays within context and
    never opens with half a tool exchange.
    """

    def __init__(self, system_prompt: str, max_messages: int = 20) -> None:
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.turns: list[Utterance] = []

    def add_caller(self, text: str, turn_id: str = "") -> None:
        self._add(Utterance("user", text.strip(), turn_id))

    def add_caller_event(self, description: str, turn_id: str = "") -> None:
        """Something the caller did that is not speech, e.g. "pressed 1" -> "[caller pressed 1]"."""
        self.add_caller(f"[caller {description.strip()}]", turn_id)

    def add_agent(self, text: str, turn_id: str = "") -> None:
        self._add(Utterance("assistant", text.strip(), turn_id))

    def add_agent_interrupted(self, heard: str, turn_id: str = "", said_before: bool = False) -> None:
        """An agent turn the caller cut off: only what they heard, ending with a note."""
        self._add(Utterance("assistant", interrupted_text(heard, said_before), turn_id, interrupted=True))

    def add_tool_exchange(self, said: str, calls: list[dict[str, Any]], results: list[dict[str, Any]],
                          turn_id: str = "") -> None:
        """The agent's words before its tool calls, the calls, and each tool's answer.

        `calls`: `{"id", "name", "arguments"}`; `results`: `{"tool_call_id", "name", "content",
        "is_error"}`, one per call.
        """
        self.turns.append(Utterance("assistant", said.strip(), turn_id, extra={"tool_calls": list(calls)}))
        for result in results:
            extra = {k: result[k] for k in ("tool_call_id", "name", "is_error") if k in result}
            self.turns.append(Utterance("tool", str(result.get("content", "")), turn_id, extra=extra))

    def add_greeting(self, text: str, turn_id: str = "") -> None:
        """The agent's opening line: first in the history even if the caller spoke first."""
        text = text.strip()
        if text:
            self.turns.insert(0, Utterance("assistant", text, turn_id))

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
        probe = Conversation(self.system_prompt, self.max_messages)
        probe.turns = list(self.turns)
        probe.add_caller(text)
        return probe.messages()

    def messages(self) -> list[dict[str, Any]]:
        recent = self.turns[-self.max_messages :]
        if len(self.turns) > self.max_messages:
            while recent and recent[0].role != "user":
                recent = recent[1:]
        history = [{"role": u.role, "content": u.text, **u.extra} for u in recent]
        return [{"role": "system", "content": self.system_prompt}, *history]

    def last(self, role: str) -> Utterance | None:
        return next((u for u in reversed(self.turns) if u.role == role), None)

    def __len__(self) -> int:
        return len(self.turns)
