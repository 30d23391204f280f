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
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .agent_options import (
    Hours,
    Limits,
    Outbound,
    Providers,
    Report,
    Strict,
    TurnTaking,
    Voice,
    Voicemail,
    WebhookTool,
)

log = logging.getLogger("ringline.agents")

DEFAULT_AGENT_ID = "default"
_NUMBER = re.compile(r"^\+?[0-9]{3,15}$")


class AgentsFileError(ValueError):
    """The agents file cannot be used; the message says where and why, one problem per line."""


def normalize_number(number: str) -> str:
    """`+1 (555) 010-0001` -> `+15550100001`; anything else than digits and one leading + is an error."""
    cleaned = re.sub(r"[\s().-]", "", number or "")
    if not _NUMBER.match(cleaned):
        raise ValueError(f"{number!r} is not a phone number (digits, optionally a leading +)")
    return cleaned


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
    raw = data.get("agents")
    agents: list[Any] = raw if isinstance(raw, list) else []
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
