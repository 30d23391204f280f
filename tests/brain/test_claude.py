"""`ClaudeChatModel` against a tiny local server speaking Anthropic's streaming Messages SSE."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.base import LLMError, StreamStats
from ringline.services.brain.llm.claude import CALL_OPENED, ClaudeChatModel, to_anthropic


HISTORY = [
    {"role": "system", "content": "You are Ringline, an AI assistant."},
    {"role": "assistant", "content": "Hi, this is Ringline. How can I help?"},
    {"role": "user", "content": "Wait."},
    {"role": "user", "content": "What is the capital of France?"},
]


async def test_streams_text_from_the_messages_api(fake_anthropic):
    base_url, requests, _ = fake_anthropic
    model = ClaudeChatModel(api_key="sk-test", base_url=base_url, max_retries=0)
    await model.load()
    stats = StreamStats()
    pieces = [p async for p in model.stream(HISTORY, 60, stats=stats)]
    await model.aclose()

    assert pieces == ["The capital", " of France is", " Paris."]
    assert stats.provider == "anthropic" and stats.output_tokens == 9 and stats.input_tokens == 42
    assert stats.first_token_at > 0

    (request,) = requests
    body = request["body"]
    headers = request["headers"]  # SDK 2.x sends the key as a bearer token; older ones as x-api-key
    assert headers.get("x-api-key") == "sk-test" or headers.get("authorization") == "Bearer sk-test"
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 60 and body["stream"] is True
    assert body["system"] == [{"type": "text", "text": "You are Ringline, an AI assistant.",
                               "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [
        {"role": "user", "content": CALL_OPENED},
        {"role": "assistant", "content": "Hi, this is Ringline. How can I help?"},
        {"role": "user", "content": "Wait.\nWhat is the capital of France?"},
    ]


async def test_api_errors_become_llm_errors(fake_anthropic):
    base_url, _, state = fake_anthropic
    state["status"] = 529
    model = ClaudeChatModel(api_key="sk-test", base_url=base_url, max_retries=0)
    with pytest.raises(LLMError, match="anthropic"):
        _ = [p async for p in model.stream(HISTORY, 60)]
    await model.aclose()


def test_role_mapping_keeps_system_apart_and_alternates():
    system, turns = to_anthropic([
        {"role": "system", "content": "A"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "assistant", "content": "three"},
        {"role": "user", "content": " "},
        {"role": "user", "content": "four"},
    ])
    assert system == "A"
    assert turns == [{"role": "user", "content": "one"}, {"role": "assistant", "content": "two\nthree"},
                     {"role": "user", "content": "four"}]
