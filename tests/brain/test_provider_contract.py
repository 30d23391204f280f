"""Every `ChatModel` implementation keeps the same promises to the session."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.base import ChatModel, StreamStats
from ringline.services.brain.llm.claude import ClaudeChatModel
from ringline.services.brain.llm.fallback import FallbackChatModel, Link

pytestmark = pytest.mark.service

QUESTION = [
    {"role": "system", "content": "You are a helpful AI assistant on the phone. Answer briefly."},
    {"role": "user", "content": "What is the capital of France?"},
]


@pytest.fixture(params=["scripted", "anthropic", pytest.param("local", marks=pytest.mark.integration), "chain"])
async def provider(request, scripted, fake_anthropic) -> ChatModel:
    if request.param == "scripted":
        yield scripted(["The capital", " of France", " is Paris."], delay=0.01)
    elif request.param == "chain":  # its first model is down: the second answers every request
        yield FallbackChatModel([Link("down", scripted([], fail_with=ConnectionError("refused")), 1.0),
                                 Link("fake", scripted(["The capital", " of France", " is Paris."]), 1.0)])
    elif request.param == "anthropic":
        base_url, _, _ = fake_anthropic
        model = ClaudeChatModel(api_key="sk-test", base_url=base_url, max_retries=0)
        await model.load()
        yield model
        await model.aclose()
    else:
        yield request.getfixturevalue("local_model")


async def test_streams_text_pieces_with_timing(provider):
    stats = StreamStats()
    pieces = [p async for p in provider.stream(QUESTION, 40, stats=stats)]
    assert pieces and all(isinstance(p, str) and p for p in pieces)
    assert "Paris" in "".join(pieces)
    assert provider.capabilities.streaming
    served = provider.links[-1].name if isinstance(provider, FallbackChatModel) else provider.provider
    assert stats.provider == served and stats.pieces == len(pieces) and stats.tokens > 0
    assert stats.started_at < stats.first_token_at <= stats.ended_at


async def test_an_abandoned_stream_does_not_block_the_next(provider):
    stream = provider.stream(QUESTION, 40)
    async for _ in stream:
        break
    await stream.aclose()
    assert "Paris" in "".join([p async for p in provider.stream(QUESTION, 40)])


async def test_tools_are_accepted_and_declared_honestly(provider):
    from ringline.services.brain.llm.base import ToolCall, ToolSpec

    weather = ToolSpec("weather", "Today's weather in a city.",
                       {"type": "object", "properties": {"city": {"type": "string"}}})
    pieces = [p async for p in provider.stream(QUESTION, 40, tools=[weather])]
    text = "".join(p for p in pieces if isinstance(p, str))
    assert "Paris" in text  # a question no tool is needed for is simply answered
    if not provider.capabilities.tools:
        assert not any(isinstance(p, ToolCall) for p in pieces)
