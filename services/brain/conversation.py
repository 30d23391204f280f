"""One call's conversation history, as chat messages for the LLM (pure state, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Utterance:
    role: str  # "user" (the caller) or "assistant" (the agent)
    text: str
    turn_id: str = ""


class Conversation:
    """The system prompt plus the call's turns, oldest first.

    Consecutive utterances of one speaker are merged (a caller who speaks twice while the
    agent was interrupted is one user message). Only the last `max_messages` are sent to the
    model, starting with a caller message when possible, so the prompt stays within context.
    """

    def __init__(self, system_prompt: str, max_messages: int = 20) -> None:
        self.system_prompt = system_prompt
        self.max_messages = max_messages
        self.turns: list[Utterance] = []

    def add_caller(self, text: str, turn_id: str = "") -> None:
        self._add("user", text, turn_id)

    def add_agent(self, text: str, turn_id: str = "") -> None:
        self._add("assistant", text, turn_id)

    def add_greeting(self, text: str, turn_id: str = "") -> None:
        """The agent's opening line: first in the history even if the caller spoke first."""
        text = text.strip()
        if text:
            self.turns.insert(0, Utterance("assistant", text, turn_id))

    def _add(self, role: str, text: str, turn_id: str) -> None:
        text = text.strip()
        if not text:
            return
        if self.turns and self.turns[-1].role == role:
            last = self.turns[-1]
            self.turns[-1] = Utterance(role, f"{last.text} {text}", last.turn_id or turn_id)
        else:
            self.turns.append(Utterance(role, text, turn_id))

    def messages(self) -> list[dict[str, str]]:
        recent = self.turns[-self.max_messages :]
        if len(self.turns) > self.max_messages and recent and recent[0].role == "assistant":
            recent = recent[1:]
        history = [{"role": u.role, "content": u.text} for u in recent]
        return [{"role": "system", "content": self.system_prompt}, *history]

    def __len__(self) -> int:
        return len(self.turns)
