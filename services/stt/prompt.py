"""What the recognizer knows of a call before it hears the caller: the agent's keyterms and what was
said last. Whisper takes it as its prompt (the text "before" the audio), which makes the words the
agent expects likelier: after "What day would you like?" a caller's "Tuesday" beats "to stay", and
with "refund" among the keyterms "refund" beats "written".

`Hints` is a frozen snapshot handed to `Recognizer.transcribe`; `CallHints` is one call's running
record of it, owned by that call's stt session; `prompt_text` is the pure decision of what Whisper
is told.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROMPT_CHARS = 480
"""About 120 tokens: Whisper keeps at most 223 prompt tokens, and a long prompt costs decode time."""


@dataclass(frozen=True)
class Hints:
    keyterms: tuple[str, ...] = ()
    """Words the call's agent expects (names, products): its `providers.keyterms`."""
    recent: tuple[str, ...] = ()
    """The last lines of the conversation, oldest first; the agent's last line is usually last."""

    @property
    def empty(self) -> bool:
        return not self.keyterms and not self.recent


NO_HINTS = Hints()


def parse_keyterms(raw: str) -> tuple[str, ...]:
    """`stt_keyterms` as the edge sets it on `CallStart.custom`: comma-separated, blanks dropped."""
    return tuple(dict.fromkeys(term.strip() for term in raw.split(",") if term.strip()))


def prompt_text(hints: Hints, max_chars: int = MAX_PROMPT_CHARS) -> str:
    """Keyterms as a sentence of their own, then the recent lines; the oldest text goes first when
    it does not fit (the agent's last line matters most)."""
    lines = [" ".join(line.split()) for line in hints.recent if line.strip()]
    terms = ", ".join(hints.keyterms)
    head = [f"{terms}."] if terms else []
    while len(lines) > 1 and len(" ".join(head + lines)) > max_chars:
        lines.pop(0)
    text = " ".join(head + lines)
    if len(text) > max_chars:  # one very long line, or very many keyterms: keep the end
        text = text[-max_chars:].split(" ", 1)[-1]
    return text


class CallHints:
    """One call's hints as the conversation goes on. The agent's reply arrives in chunks, one turn
    at a time (`agent_said(turn_id, text)`), the caller's words as final transcripts."""

    def __init__(self, keyterms: tuple[str, ...] = (), keep: int = 2) -> None:
        self.keyterms = keyterms
        self.keep = max(0, keep)
        self._lines: list[tuple[str, str]] = []  # (who/turn, text), oldest first

    @classmethod
    def from_custom(cls, custom: dict[str, str], keep: int = 2) -> CallHints:
        return cls(parse_keyterms(custom.get("stt_keyterms", "")), keep)

    def agent_said(self, turn_id: str, text: str) -> None:
        text = text.strip()
        if not text:
            return
        key = f"agent:{turn_id}"
        if self._lines and self._lines[-1][0] == key:  # the next chunk of the same turn
            self._lines[-1] = (key, f"{self._lines[-1][1]} {text}")
        else:
            self._remember(key, text)

    def caller_said(self, text: str) -> None:
        if text.strip():
            self._remember("caller", text.strip())

    def _remember(self, key: str, text: str) -> None:
        self._lines.append((key, text))
        del self._lines[: max(0, len(self._lines) - self.keep)]

    def now(self) -> Hints:
        return Hints(self.keyterms, tuple(text for _, text in self._lines))
