"""Scenarios: what a simulated caller does, step by step, written in YAML, JSON or Python.

```yaml
steps:
  - say: "Hi, what are your opening hours?"
  - say: ["I'd like to book a table", {pause_ms: 600}, "for Tuesday"]   # one utterance, a 600 ms gap
  - say: {wav: question.wav}
  - interrupt: {after_ms: 1200, text: "Sorry, actually, stop there."}   # over the agent's next reply
  - backchannel: {after_ms: 800, text: "Uh-huh."}                       # short, while it still plays
  - wait: 3000                                                          # ms of silence
  - dtmf: "5"
  - hangup: {after_ms: 500}                                             # the caller hangs up mid-reply
  - expect_hangup: {timeout_s: 20}                                      # the agent should end the call
```

In Python: `Scenario([Say("Hi"), Interrupt("Stop", after_ms=800), ExpectHangup()])`. Text is
spoken by the local Piper voice; `prepare` turns every text and WAV into audio before the call
rings, so nothing blocks once it does. Steps that speak wait for the agent's reply to finish
unless the next step is tied to that reply (`interrupt`, `backchannel`, `hangup` with `after_ms`,
`expect_hangup`).
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .speech import Synth, Utterance, compose, load_synth, read_wav, say


class ScenarioError(ValueError):
    """A scenario that cannot be run; the message says which step and why."""


@dataclass(frozen=True)
class Pause:
    """Silence inside one utterance."""

    ms: int


@dataclass(frozen=True)
class Wav:
    path: Path


Part = str | Pause | Wav | Utterance


def _parts(value: str | Part | Sequence[Part]) -> tuple[Part, ...]:
    parts = (value,) if isinstance(value, str | Pause | Wav | Utterance) else tuple(value)
    if not parts or not all(isinstance(p, str | Pause | Wav | Utterance) for p in parts):
        raise ScenarioError(f"nothing to say in {value!r}")
    return parts


def _label(parts: Sequence[Part]) -> str:
    words = []
    for part in parts:
        if isinstance(part, Pause):
            words.append(f"[{part.ms} ms pause]")
        elif isinstance(part, Wav):
            words.append(f"[{part.path.name}]")
        else:
            words.append(part if isinstance(part, str) else (part.text or part.label))
    return " ".join(words)


@dataclass
class Speaks:
    """A step that says something; `utterance` is filled in by `prepare`."""

    parts: str | Part | Sequence[Part] = ()
    utterance: Utterance | None = field(default=None, repr=False, kw_only=True)

    def __post_init__(self) -> None:
        self.parts = _parts(self.parts)

    @property
    def label(self) -> str:
        return _label(_parts(self.parts))


@dataclass
class Say(Speaks):
    """Say one utterance (text, a WAV, or pieces with `Pause`s in between), then by default
    wait for the agent's reply to finish playing."""

    kind: ClassVar[str] = "say"
    wait_reply: bool | None = None  # None: unless the next step is tied to the reply


@dataclass
class Interrupt(Speaks):
    """Start speaking `after_ms` after the agent's next reply starts playing (the speech itself
    starts then: the utterance's leading silence is sent before)."""

    kind: ClassVar[str] = "interrupt"
    after_ms: int = 1000


@dataclass
class Backchannel(Speaks):
    """Say something short ("uh-huh") `after_ms` into the agent's next reply, while it still plays
    (the speech itself starts then). A step tied to a reply right after it (another backchannel,
    an interrupt) acts on the same reply, its `after_ms` counted from the same first audio."""

    kind: ClassVar[str] = "backchannel"
    parts: str | Part | Sequence[Part] = "Uh-huh."
    after_ms: int = 1000


@dataclass
class Wait:
    """Stay silent for `ms` (whatever the agent does meanwhile is recorded)."""

    kind: ClassVar[str] = "wait"
    ms: int = 1000

    @property
    def label(self) -> str:
        return f"{self.ms} ms of silence"


@dataclass
class Dtmf:
    """Press a key; `wait_reply` waits for the agent's answer to it."""

    kind: ClassVar[str] = "dtmf"
    digit: str = "1"
    wait_reply: bool = False

    def __post_init__(self) -> None:
        if len(self.digit) != 1 or self.digit not in "0123456789*#ABCD":
            raise ScenarioError(f"dtmf digit {self.digit!r} is not a key of a phone")

    @property
    def label(self) -> str:
        return f"key {self.digit}"


@dataclass
class Hangup:
    """The caller hangs up: now, or `after_ms` into the agent's next reply."""

    kind: ClassVar[str] = "hangup"
    after_ms: int | None = None

    @property
    def label(self) -> str:
        return "hang up" + (f" {self.after_ms} ms into the reply" if self.after_ms is not None else "")


@dataclass
class ExpectHangup:
    """Wait (at most `timeout_s`) for the agent to end the call."""

    kind: ClassVar[str] = "expect_hangup"
    timeout_s: float = 20.0

    @property
    def label(self) -> str:
        return f"the agent hangs up within {self.timeout_s:g} s"


Step = Say | Interrupt | Backchannel | Wait | Dtmf | Hangup | ExpectHangup
TIED_TO_REPLY: tuple[type, ...] = (Interrupt, Backchannel, ExpectHangup)


def tied_to_reply(step: Step | None) -> bool:
    """Steps that act on the agent's next reply, so the step before must not wait it out."""
    return isinstance(step, TIED_TO_REPLY) or (isinstance(step, Hangup) and step.after_ms is not None)


@dataclass
class Scenario:
    steps: list[Step]
    name: str = ""

    @classmethod
    def from_data(cls, data: Any, base_dir: Path | None = None, name: str = "") -> Scenario:
        """From parsed YAML/JSON: a list of steps, or a mapping with `steps` (and `name`)."""
        from .scenario_file import parse_steps

        return parse_steps(data, base_dir or Path.cwd(), name)

    @property
    def prepared(self) -> bool:
        return all(s.utterance is not None for s in self.steps if isinstance(s, Speaks))


# ---------------------------------------------------------------------------- preparing


def speak_parts(parts: Sequence[Part], synth: Synth | None) -> Utterance:
    """The audio of one spoken step; `synth` is needed when a part is text."""
    pieces: list[Utterance | int] = []
    for part in parts:
        if isinstance(part, Pause):
            pieces.append(part.ms)
        elif isinstance(part, Wav):
            pieces.append(read_wav(part.path))
        elif isinstance(part, Utterance):
            pieces.append(part)
        else:
            if synth is None:
                raise ScenarioError(f"no voice to say {part!r}")
            pieces.append(say(synth, part))
    if len(pieces) == 1 and isinstance(pieces[0], Utterance):
        return pieces[0]
    return compose(pieces, label=_label(parts))


def prepare(scenario: Scenario, synth: Synth | None = None) -> Scenario:
    """A copy with every spoken step turned into audio (blocking: run it before the call)."""
    needs_voice = any(isinstance(p, str) for s in scenario.steps if isinstance(s, Speaks)
                      and s.utterance is None for p in _parts(s.parts))
    if needs_voice and synth is None:
        synth = load_synth(threads=1)
    steps: list[Step] = []
    for step in scenario.steps:
        if isinstance(step, Speaks) and step.utterance is None:
            step = copy(step)
            step.utterance = speak_parts(_parts(step.parts), synth)
        steps.append(step)
    return Scenario(steps, name=scenario.name)


def from_utterances(utterances: Sequence[Utterance]) -> Scenario:
    """The classic script: say each utterance and wait for the reply."""
    steps: list[Step] = []
    for utterance in utterances:
        steps.append(Say(utterance, utterance=utterance))
    return Scenario(steps)
