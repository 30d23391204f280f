"""Brain settings: defaults a caller would notice, and the provider switch."""

from ringline.services.brain.settings import BrainSettings


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
