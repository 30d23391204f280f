"""The agent's turn-taking settings, as the decisions (`decide`) read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Rules:
    """The agent's turn-taking settings the decisions use."""

    barge_in_min_ms: float = 300.0
    barge_in_confirm_ms: float = 600.0
    barge_in_collision_ms: float = 300.0
    hold_resume_s: float = 1.5
    backchannel_grace_s: float = 1.0
    preemptive: bool = False
    goodbye_phrases: bool = True
    chars_per_s: float = 14.0
    slack_s: float = 5.0
    silence_first_s: float = 8.0
    silence_again_s: float = 8.0
    reprompt_line: str = "Are you still there?"
    silence_goodbye_line: str = "Goodbye!"
    goodbye_line: str = "Goodbye!"
    time_limit_line: str = "Goodbye!"
    max_call_s: float = 1800.0
    dtmf_replies: dict[str, str] = field(default_factory=dict)
    backchannel_max_ms: float = 0.0  # a burst over the agent that goes quiet within this: it goes on at once
    backchannel_quiet_ms: float = 150.0  # no more voiced audio for this long: the burst is over

    @classmethod
    def of(cls, settings: Any, goodbye_phrases: bool) -> Rules:
        s = settings
        return cls(s.barge_in_min_ms, s.barge_in_confirm_ms, s.barge_in_collision_ms, s.hold_resume_s,
                   s.backchannel_grace_s, s.preemptive_generation, goodbye_phrases, s.playback_chars_per_s,
                   s.playback_slack_s, s.silence_reprompt_s, s.silence_goodbye_s, s.reprompt_line,
                   s.silence_goodbye_line, s.goodbye_line, s.time_limit_line, s.max_call_s, dict(s.dtmf_replies),
                   s.backchannel_max_ms, s.backchannel_quiet_ms)

    def playback_timeout(self, text: str) -> float:
        """How long `text` may take to be heard: its spoken length plus the slack."""
        return len(text) / self.chars_per_s + self.slack_s

