"""Reading scenarios from YAML or JSON (see `scenario` for the format)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .scenario import (
    Backchannel,
    Dtmf,
    ExpectHangup,
    Hangup,
    Interrupt,
    Part,
    Pause,
    Say,
    Scenario,
    ScenarioError,
    Step,
    Wait,
    Wav,
)


def parse_steps(data: Any, base_dir: Path, name: str = "") -> Scenario:
    """A list of steps, or a mapping with `steps` (and `name`); WAV paths are relative to `base_dir`."""
    if isinstance(data, Mapping):
        name = str(data.get("name", name))
        data = data.get("steps")
    if not isinstance(data, list) or not data:
        raise ScenarioError("a scenario is a non-empty list of steps (or a mapping with `steps:`)")
    return Scenario([_step(item, i + 1, base_dir) for i, item in enumerate(data)], name=name)


def load_scenario(path: str | Path) -> Scenario:
    """A scenario file: `.json`, or YAML for anything else."""
    path = Path(path)
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: unreadable scenario: {exc}") from None
    return Scenario.from_data(data, base_dir=path.parent, name=path.stem)


# ------------------------------------------------------------------------------ parsing


def _part(value: Any, where: str, base: Path) -> Part:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and set(value) == {"pause_ms"}:
        return Pause(_int(value["pause_ms"], where))
    if isinstance(value, Mapping) and set(value) == {"wav"}:
        return Wav((base / str(value["wav"])).resolve())
    raise ScenarioError(f"{where}: {value!r} is neither text, {{pause_ms: N}} nor {{wav: FILE}}")


def _speech(value: Any, where: str, base: Path) -> tuple[Part, ...]:
    items = value if isinstance(value, list) else [value]
    parts = tuple(_part(v, where, base) for v in items)
    if not any(isinstance(p, str | Wav) for p in parts):
        raise ScenarioError(f"{where}: nothing to say")
    return parts


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ScenarioError(f"{where}: {value!r} is not a number of milliseconds")
    return int(value)


def _options(value: Any, where: str, allowed: set[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ScenarioError(f"{where}: expected a mapping of {sorted(allowed)}, got {value!r}")
    unknown = set(value) - allowed
    if unknown:
        raise ScenarioError(f"{where}: unknown option(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    return dict(value)


def _spoken(value: Any, where: str, base: Path, options: set[str], default: str | None = None):
    """`step: text`, `step: [parts]` or `step: {text|say: ..., option: ...}`."""
    if isinstance(value, Mapping) and not set(value) <= {"pause_ms", "wav"}:
        opts = _options(value, where, options | {"text", "say"})
        speech = opts.pop("text", opts.pop("say", default))
        if speech is None:
            raise ScenarioError(f"{where}: say what? (`text:`)")
        return _speech(speech, where, base), opts
    return _speech(value if value is not None else default, where, base), {}


def _step(item: Any, number: int, base: Path) -> Step:
    if not isinstance(item, Mapping) or len(item) != 1:
        raise ScenarioError(f"step {number}: expected one `kind: value` pair, got {item!r}")
    ((kind, value),) = item.items()
    where = f"step {number} ({kind})"
    builders: dict[str, Callable[[], Step]] = {
        "say": lambda: _say(value, where, base),
        "interrupt": lambda: _tied(Interrupt, value, where, base, None),
        "backchannel": lambda: _tied(Backchannel, value, where, base, "Uh-huh."),
        "wait": lambda: Wait(_int(value.get("ms") if isinstance(value, Mapping) else value, where)),
        "dtmf": lambda: _dtmf(value, where),
        "hangup": lambda: Hangup(**{k: _int(v, where) for k, v in _options(value, where, {"after_ms"}).items()}),
        "expect_hangup": lambda: ExpectHangup(**{k: float(_int(v, where)) for k, v in
                                                 _options(value, where, {"timeout_s"}).items()}),
    }
    if kind not in builders:
        raise ScenarioError(f"step {number}: unknown step {kind!r}; steps are {', '.join(builders)}")
    try:
        return builders[kind]()
    except (TypeError, ValueError, AttributeError) as exc:  # ScenarioError included
        message = str(exc)
        raise ScenarioError(message if message.startswith("step ") else f"{where}: {message}") from None


def _say(value: Any, where: str, base: Path) -> Say:
    parts, opts = _spoken(value, where, base, {"wait_reply"})
    return Say(parts, wait_reply=opts.get("wait_reply"))


def _tied(cls: type[Interrupt] | type[Backchannel], value: Any, where: str, base: Path,
          default: str | None) -> Interrupt | Backchannel:
    parts, opts = _spoken(value, where, base, {"after_ms"}, default)
    return cls(parts, after_ms=_int(opts.get("after_ms", 1000), where))


def _dtmf(value: Any, where: str) -> Dtmf:
    if isinstance(value, Mapping):
        opts = _options(value, where, {"digit", "wait_reply"})
        return Dtmf(str(opts.get("digit", "")), wait_reply=bool(opts.get("wait_reply", False)))
    return Dtmf(str(value))


