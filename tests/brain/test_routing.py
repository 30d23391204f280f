"""The routing rule: which Claude model a turn goes to, from what the caller said and the agent's setting."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.routing import RoutingRule, last_caller_text
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit


def test_short_questions_go_to_the_fast_model_long_ones_and_keywords_to_the_strong_one():
    rule = RoutingRule(min_words=8, keywords=("refund", "speak to a manager"))
    assert rule.choose("What time do you open tomorrow?").strong is False
    assert rule.choose("So I ordered a lamp and it arrived broken twice already").why == "11 words"
    assert rule.choose("Can I SPEAK to a manager, please?").why == "keyword 'speak to a manager'"
    assert rule.choose("Refund!").strong
    assert rule.choose("Is this refundable?").strong is False  # whole words only


def test_the_agent_setting_overrides_the_rule():
    long_ask = " ".join(["word"] * 100)
    assert RoutingRule(mode="always").choose("Hi.").strong
    assert RoutingRule(mode="never", keywords=("refund",)).choose(f"refund {long_ask}").strong is False
    assert RoutingRule(min_words=0).choose(long_ask).strong is False  # the length rule switched off


def test_the_rule_reads_what_the_caller_said_last():
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is order 12?"},
                {"role": "assistant", "content": "", "tool_calls": []},
                {"role": "tool", "content": '{"status": "shipped"}'}]
    assert last_caller_text(messages) == "Where is order 12?"
    assert last_caller_text(messages[:1]) == ""


def test_routing_and_chain_defaults(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    settings = BrainSettings()
    assert settings.resolved_chain == ("local",) and settings.daily_spend_cap is None
    assert (settings.anthropic_model, settings.anthropic_strong_model) == ("claude-haiku-4-5", "claude-sonnet-4-6")
    assert settings.strong_route == "rule" and settings.strong_min_words == 30 and settings.strong_keywords == []
    assert settings.anthropic_first_token_timeout_s + settings.local_first_token_timeout_s <= 1.5
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    monkeypatch.setenv("RINGLINE_BRAIN_DAILY_SPEND_CAP", "2.5")
    settings = BrainSettings()
    assert settings.resolved_chain == ("anthropic-strong", "anthropic", "local")
    assert settings.daily_spend_cap == 2.5
    monkeypatch.setenv("RINGLINE_BRAIN_PROVIDER", "local")
    assert BrainSettings().resolved_chain == ("local",)
