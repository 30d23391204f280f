"""Brain settings: defaults a caller would notice, and the provider switch."""

import pytest

from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit


def test_defaults(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = BrainSettings()
    assert settings.port == 8082
    assert "AI" in settings.greeting
    assert settings.max_reply_tokens <= 80
    assert "Ringline" in settings.persona and "{agent_name}" not in settings.persona
    assert settings.resolved_provider == "local"
    assert settings.model_dir.is_absolute()


def test_anthropic_key_from_env_selects_claude(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("RINGLINE_BRAIN_AGENT_NAME", "Ava")
    settings = BrainSettings()
    assert settings.anthropic_api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(settings)
    assert settings.resolved_provider == "anthropic"
    assert "You are Ava" in settings.persona


def test_provider_can_be_forced_local(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("RINGLINE_BRAIN_PROVIDER", "local")
    assert BrainSettings().resolved_provider == "local"


def test_turn_taking_defaults_and_env(monkeypatch):
    monkeypatch.setenv("RINGLINE_BRAIN_DTMF_REPLIES", '{"0": "Transferring isn\'t available yet."}')
    monkeypatch.setenv("RINGLINE_BRAIN_BARGE_IN_MIN_MS", "300")
    monkeypatch.setenv("RINGLINE_BRAIN_PREEMPTIVE_GENERATION", "true")
    settings = BrainSettings()
    assert settings.dtmf_replies == {"0": "Transferring isn't available yet."}
    assert settings.barge_in_min_ms == 300 and settings.preemptive_generation
    defaults = BrainSettings.model_fields
    assert defaults["barge_in_min_ms"].default == 600 and defaults["barge_in_confirm_ms"].default == 1000
    assert defaults["backchannel_max_ms"].default == 800 and defaults["backchannel_quiet_ms"].default == 150
    assert defaults["preemptive_generation"].default is False
    assert defaults["silence_reprompt_s"].default == 8.0 and defaults["filler_after_ms"].default == 700
    assert settings.tools == [] and settings.goodbye_phrases == "auto"
