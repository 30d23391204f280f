"""Agents: who answers which number, how they sound and behave, and who they let through.

One YAML file (`RINGLINE_AGENTS_FILE`) declares every agent:

    agents:
      - id: reception
        name: Ava
        numbers: ["+15550100001"]
        persona: "You are {agent_name}, the receptionist of ..."
        greeting: "Hi, this is Ava, an AI assistant at ..."
        allow: ["+1555*"]            # caller numbers or glob patterns; empty: everyone
        hours: {timezone: Europe/London, open: {mon-fri: "09:00-17:30"}}
        limits: {max_call_s: 900, max_concurrent_calls: 4, daily_spend: 5.0}

The telephony edge routes a call by its dialled number (`AgentBook.for_number`), the brain takes
the agent's persona, greeting, tools and providers, and decides whether the call is answered or
goes to voicemail (`Agent.admit`). Every service that reads the file watches it
(`WatchedAgentBook`): an edit takes effect on the next call, and an invalid edit is logged and
ignored, keeping the last good book. Without a file there is one agent, `default`, which uses
each service's own settings.
"""

from __future__ import annotations

import fnmatch
import logging
import re
import threading
import time
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

log = logging.getLogger("ringline.agents")

DEFAULT_AGENT_ID = "default"
_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


class AgentsFileError(ValueError):
    """The agents file cannot be used; the message says where and why, one problem per line."""


def normalize_number(number: str) -> str:
    """`+1 (555) 010-0001` -> `+15550100001`; anything else than digits and one leading + is an error."""
    cleaned = re.sub(r"[\s().-]", "", number or "")
    if not _NUMBER.match(cleaned):
        raise ValueError(f"{number!r} is not a phone number (digits, optionally a leading +)")
    return cleaned


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookTool(Strict):
    """An HTTP tool the LLM may call: `POST url` with `{"tool", "arguments", "call_id"}`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str = Field(min_length=1)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    url: str = Field(pattern=r"^https?://")
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    headers: dict[str, str] = Field(default_factory=dict)


class Voice(Strict):
    """The agent's voice; unset fields keep the TTS service's settings."""

    cartesia_voice_id: str | None = None
    cartesia_model: str | None = None


class Providers(Strict):
    """Per-agent provider choices; unset fields keep the services' settings."""

    brain_chain: list[Literal["anthropic-strong", "anthropic", "local"]] | None = None
    strong_route: Literal["rule", "always", "never"] | None = None
    strong_keywords: list[str] | None = None
    keyterms: list[str] = Field(default_factory=list, description="words the STT should expect")


class TurnTaking(Strict):
    """How the agent takes turns; unset fields keep the services' settings. The STT's fields ride
    on `CallStart.custom` (`stt_end_silence_ms`, ...), the brain's go into its settings."""

    end_silence_ms: int | None = Field(default=None, ge=100, le=5000,
                                       description="STT: silence that ends a turn when its words cannot tell")
    complete_silence_ms: int | None = Field(default=None, ge=100, le=5000,
                                            description="STT: silence after a finished sentence")
    backstop_silence_ms: int | None = Field(default=None, ge=100, le=10000,
                                            description="STT: silence that ends even a sentence trailing off")
    max_turn_s: float | None = Field(default=None, ge=2, le=120,
                                     description="STT: the longest caller turn before the agent steps in")
    barge_in_min_ms: float | None = Field(default=None, ge=0, description="speech that pauses the agent")
    barge_in_confirm_ms: float | None = Field(default=None, ge=0, description="speech that interrupts it")
    preemptive_generation: bool | None = None
    silence_reprompt_s: float | None = Field(default=None, ge=0, description="0: never re-prompt")
    silence_goodbye_s: float | None = Field(default=None, gt=0)
    filler_after_ms: float | None = Field(default=None, ge=0)

    def stt_options(self) -> dict[str, str]:
        """The STT's part, as `CallStart.custom` entries."""
        values = {"end_silence_ms": self.end_silence_ms, "complete_silence_ms": self.complete_silence_ms,
                  "backstop_silence_ms": self.backstop_silence_ms,
                  "max_utterance_ms": round(self.max_turn_s * 1000) if self.max_turn_s else None}
        return {f"stt_{name}": str(value) for name, value in values.items() if value is not None}

    def brain_settings(self) -> dict[str, Any]:
        """The brain's part: the brain settings this agent sets."""
        names = ("barge_in_min_ms", "barge_in_confirm_ms", "preemptive_generation", "silence_reprompt_s",
                 "silence_goodbye_s", "filler_after_ms")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}


class Limits(Strict):
    max_call_s: float = Field(default=1800.0, gt=0, description="then the agent says goodbye and hangs up")
    max_concurrent_calls: int | None = Field(default=None, ge=1, description="more calls go to voicemail")
    daily_spend: float | None = Field(default=None, ge=0, description="per UTC day; then calls go to voicemail")


class Hours(Strict):
    """Opening hours in the agent's time zone: `{"mon-fri": "09:00-17:30", "sat": "10:00-13:00"}`.
    A day not listed is closed; a span may pass midnight (`22:00-02:00` belongs to the day it starts)."""

    timezone: str = "UTC"
    open: dict[str, str] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name such as Europe/London)") from None
        return value

    @field_validator("open")
    @classmethod
    def _spans(cls, value: dict[str, str]) -> dict[str, str]:
        for days, span in value.items():
            _expand_days(days)
            _parse_span(span)
        return value

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(ZoneInfo(self.timezone))
        now_min = local.hour * 60 + local.minute
        today = local.weekday()
        for days, span in self.open.items():
            start, end = _parse_span(span)
            for day in _expand_days(days):
                if start < end and day == today and start <= now_min < end:
                    return True
                over_midnight = start >= end
                if over_midnight and ((day == today and now_min >= start) or ((day + 1) % 7 == today and now_min < end)):
                    return True
        return False


def _expand_days(days: str) -> list[int]:
    out: list[int] = []
    for part in days.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ValueError(f"{days!r}: days are mon..sun, as 'mon-fri' or 'sat,sun'")
        a, b = _DAYS.index(first), _DAYS.index(last or first)
        out.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    return out


def _parse_span(span: str) -> tuple[int, int]:
    match = _SPAN.match(span.strip())
    if not match:
        raise ValueError(f"{span!r}: a span is 'HH:MM-HH:MM'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        clock(h1 % 24, m1), clock(h2 % 24, m2)
    except ValueError:
        raise ValueError(f"{span!r}: not a time of day") from None
    return h1 * 60 + m1, h2 * 60 + m2


class Voicemail(Strict):
    prompt: str = "Sorry, I can't take your call right now. Please leave a message, and I'll pass it on."
    max_s: float = Field(default=60.0, gt=0, le=600, description="longest message")
    silence_s: float = Field(default=3.0, gt=0, description="caller silence that ends the message")
    goodbye: str = "Thanks, I've got your message. Goodbye!"


class Report(Strict):
    url: str = Field(pattern=r"^https?://")
    secret_env: str = Field(
        default="RINGLINE_REPORT_SECRET", description="environment variable holding the HMAC-SHA256 key"
    )


class Outbound(Strict):
    on_machine: Literal["leave_message", "hangup"] = "leave_message"
    machine_message: str = Field(
        default="", description="left on an answering machine; empty: one made from the call's purpose"
    )


class Agent(Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    name: str | None = Field(default=None, description="how the agent calls itself; unset: the brain's agent_name")
    numbers: list[str] = Field(default_factory=list)
    persona: str | None = Field(default=None, description="the system prompt; `{agent_name}` is filled in")
    greeting: str | None = None
    voice: Voice = Voice()
    providers: Providers = Providers()
    turn_taking: TurnTaking = TurnTaking()
    tools: list[WebhookTool] = Field(default_factory=list)
    allow: list[str] = Field(default_factory=list, description="caller numbers or glob patterns; empty: all")
    limits: Limits = Limits()
    hours: Hours | None = Field(default=None, description="unset: always open")
    voicemail: Voicemail = Voicemail()
    reports: list[Report] = Field(default_factory=list)
    outbound: Outbound = Outbound()
    transfer_number: str | None = Field(default=None, description="where transfer_call sends the caller")
    record_audio: bool = False

    @field_validator("numbers")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        return [normalize_number(n) for n in value]

    @field_validator("transfer_number")
    @classmethod
    def _transfer(cls, value: str | None) -> str | None:
        return normalize_number(value) if value else None

    @field_validator("allow")
    @classmethod
    def _allow(cls, value: list[str]) -> list[str]:
        return [re.sub(r"[\s().-]", "", pattern) for pattern in value if pattern.strip()]

    def allows(self, caller: str) -> bool:
        if not self.allow:
            return True
        try:
            number = normalize_number(caller)
        except ValueError:
            return False  # an anonymous or withheld number never matches an allow-list
        return any(fnmatch.fnmatchcase(number, pattern) for pattern in self.allow)

    def admit(self, caller: str, when: datetime, active_calls: int | None = None,
              spent_today: float | None = None) -> str:
        """Why this call goes to voicemail, or "" when the agent answers it. `active_calls`
        counts the agent's other calls in progress; None (unknown) never sends a call away."""
        if not self.allows(caller):
            return "caller not on the allow-list"
        if self.hours is not None and not self.hours.is_open(when):
            return "outside business hours"
        limit = self.limits.max_concurrent_calls
        if limit is not None and active_calls is not None and active_calls >= limit:
            return "busy"
        cap = self.limits.daily_spend
        if cap is not None and spent_today is not None and spent_today >= cap:
            return "over the daily spend cap"
        return ""


class AgentBook(BaseModel):
    """Every agent, with the lookups the services need."""

    model_config = ConfigDict(frozen=True)

    agents: list[Agent] = Field(default_factory=lambda: [Agent(id=DEFAULT_AGENT_ID)])
    default_agent: str | None = Field(default=None, description="answers numbers no agent lists")
    source: str = ""

    @model_validator(mode="after")
    def _unique(self) -> AgentBook:
        if not self.agents:
            raise ValueError("no agents: declare at least one")
        seen: dict[str, str] = {}
        ids: set[str] = set()
        for agent in self.agents:
            if agent.id in ids:
                raise ValueError(f"agent id {agent.id!r} is declared twice")
            ids.add(agent.id)
            for number in agent.numbers:
                if number in seen:
                    raise ValueError(f"number {number} belongs to both {seen[number]!r} and {agent.id!r}")
                seen[number] = agent.id
        if self.default_agent is not None and self.default_agent not in ids:
            raise ValueError(f"default_agent {self.default_agent!r} is not one of the agents")
        return self

    def get(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    @property
    def fallback(self) -> Agent:
        return self.get(self.default_agent or "") or self.agents[0]

    def for_number(self, dialled: str) -> Agent:
        """The agent that owns the dialled number, else the default agent."""
        try:
            number = normalize_number(dialled)
        except ValueError:
            return self.fallback
        return next((a for a in self.agents if number in a.numbers), self.fallback)

    def agent(self, agent_id: str) -> Agent:
        """The agent by id; an unknown id (a stale parameter, a removed agent) gets the default."""
        return self.get(agent_id) or self.fallback


def load_agents(path: str | Path) -> AgentBook:
    """Read and validate an agents file; AgentsFileError lists every problem with its place."""
    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AgentsFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise AgentsFileError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"agents": data}
    if not isinstance(data, dict) or "agents" not in data:
        raise AgentsFileError(f"{path}: expected a mapping with an 'agents' list")
    try:
        return AgentBook.model_validate({**data, "source": str(path)})
    except ValidationError as exc:
        raise AgentsFileError(f"{path}:\n" + _explain(exc, data)) from None


def _explain(exc: ValidationError, data: dict[str, Any]) -> str:
    """One line per problem, placed like `agents[1] (agent 'sales').numbers: ...`."""
    agents = data.get("agents") if isinstance(data.get("agents"), list) else []
    lines = []
    for error in exc.errors():
        where = list(error["loc"])
        place = ""
        if len(where) >= 2 and where[0] == "agents" and isinstance(where[1], int):
            index = where[1]
            entry = agents[index] if index < len(agents) else None
            name = f" (agent {entry['id']!r})" if isinstance(entry, dict) and entry.get("id") else ""
            place, where = f"agents[{index}]{name}", where[2:]
        for part in where:
            place += f"[{part}]" if isinstance(part, int) else f".{part}" if place else str(part)
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  {place or 'file'}: {message}")
    return "\n".join(lines)


class WatchedAgentBook:
    """The agents file, re-read when it changes (checked at most every `interval_s` on lookup).

    A reload that fails validation is logged and the last good book stays in force, so an
    operator's typo never takes the phone line down. Without a path: the one default agent.
    """

    def __init__(self, path: str | Path | None, interval_s: float = 1.0) -> None:
        self.path = Path(path).expanduser() if path else None
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._checked = 0.0
        self.error = ""
        self._book = load_agents(self.path) if self.path else AgentBook()
        if self.path:
            self._stamp = self._stat()

    def _stat(self) -> tuple[float, int] | None:
        try:
            stat = self.path.stat() if self.path else None
        except OSError:
            return None
        return (stat.st_mtime, stat.st_size) if stat else None

    @property
    def book(self) -> AgentBook:
        if self.path is None:
            return self._book
        now = time.monotonic()
        if now - self._checked < self.interval_s:
            return self._book
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp is not None and stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._book = load_agents(self.path)
                    self.error = ""
                    log.info("reloaded %d agent(s) from %s", len(self._book.agents), self.path)
                except AgentsFileError as exc:
                    self.error = str(exc)
                    log.error("agents file changed but is invalid; keeping the previous agents:\n%s", exc)
        return self._book


def open_agent_book(path: str | Path | None) -> WatchedAgentBook:
    """The agents file for a starting service: an invalid file stops the start with the reasons
    (exit status 2) rather than a traceback."""
    try:
        return WatchedAgentBook(path)
    except AgentsFileError as exc:
        log.critical("cannot start: invalid agents file %s", exc)
        raise SystemExit(2) from None
