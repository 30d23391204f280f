"""The parts of an agent in the agents file (see `agents`): its webhook tools, voice, providers,
turn-taking, limits, opening hours, voicemail, call reports and outbound calls. Unset fields keep
the services' own settings.
"""

from __future__ import annotations

import re
from datetime import datetime
from datetime import time as clock
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})$")


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
    turn_model: bool | None = Field(default=None, description="STT: the learned end-of-turn model judges pauses")
    turn_model_threshold: float | None = Field(default=None, ge=0, le=1,
                                               description="STT: the model's probability of a finished turn")
    turn_model_silence_ms: int | None = Field(default=None, ge=100, le=5000,
                                              description="STT: silence after a turn the model calls finished")
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
                  "max_utterance_ms": round(self.max_turn_s * 1000) if self.max_turn_s else None,
                  "turn_model": None if self.turn_model is None else ("on" if self.turn_model else "off"),
                  "turn_model_threshold": self.turn_model_threshold,
                  "turn_model_silence_ms": self.turn_model_silence_ms}
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
                if over_midnight and ((day == today and now_min >= start)
                                      or ((day + 1) % 7 == today and now_min < end)):
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
    when_busy: bool = Field(
        default=False, description="when no brain or TTS replica has room for a call, the edge takes a message "
                                   "(this prompt, then the caller's words) instead of playing the busy line")


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
