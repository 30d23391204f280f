"""The `ChatModel.stream` template method: timing, timeouts, error wrapping, cancellation."""

from __future__ import annotations

import asyncio

import pytest

from ringline.services.brain.llm.base import LLMError, StreamStats, build_chat_model
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit


async def collect(model, **kwargs) -> list[str]:
    return [piece async for piece in model.stream([{"role": "user", "content": "hi"}], 20, **kwargs)]


async def test_stream_times_first_token_and_counts_pieces(scripted):
    stats = StreamStats()
    model = scripted(["Hello", "", " there."], delay=0.02)
    assert await collect(model, stats=stats) == ["Hello", " there."]
    assert stats.provider == "fake" and stats.model == "scripted"
    assert stats.pieces == 2 == stats.tokens
    assert stats.started_at < stats.first_token_at <= stats.ended_at
    assert 15 <= stats.first_token_ms <= stats.total_ms


async def test_provider_errors_become_one_llm_error(scripted):
    model = scripted(["Hi"], fail_with=ConnectionError("socket closed"))
    with pytest.raises(LLMError, match="fake: ConnectionError: socket closed"):
        await collect(model)


async def test_no_first_token_in_time_is_an_llm_error_and_stops_the_provider(scripted):
    model = scripted(["late"], first_delay=10)
    with pytest.raises(LLMError, match=r"no first token within 0\.1s"):
        await collect(model, first_token_timeout=0.1)
    assert model.stopped == 1


async def test_a_stall_between_tokens_is_an_llm_error(scripted):
    model = scripted(["a", "b"], delay=0.3, first_delay=0.0)
    with pytest.raises(LLMError, match="no next token"):
        await collect(model, first_token_timeout=1.0, stall_timeout=0.1)


async def test_cancelling_the_consumer_closes_the_provider_stream(scripted):
    model = scripted(["x"] * 100, delay=0.02)

    async def consume():
        async for _ in model.stream([], 10):
            pass

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert model.stopped == 1 and model.finished == 0


async def test_breaking_out_early_closes_the_provider_stream(scripted):
    model = scripted(["x"] * 100)
    stream = model.stream([], 10)
    async for _ in stream:
        break
    await stream.aclose()
    assert model.stopped == 1


def test_build_chat_model_picks_the_provider_without_loading_anything(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    local = build_chat_model(BrainSettings())
    assert local.provider == "local" and local.capabilities.prompt_cache and not local.loaded
    cloud = build_chat_model(BrainSettings(anthropic_api_key="sk-test", chain="anthropic"))
    assert cloud.provider == "anthropic" and cloud.model.startswith("claude-haiku")
