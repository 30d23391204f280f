"""Prompt caching that pays: breakpoints only where the model can cache (Haiku 4.5: a 4,096-token
minimum), what changes during a call after them, and the conversation cached once it is long;
against the Anthropic double caching as the API does, through the real SDK."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.base import StreamStats
from ringline.services.brain.llm.claude import ClaudeChatModel
from ringline.services.brain.llm.prompt_cache import minimum_tokens

from doubles.anthropic import AnthropicDouble

pytestmark = pytest.mark.service

SHORT_PERSONA = "You are Ringline, a friendly receptionist for a dental practice. Keep answers short."
LONG_PERSONA = SHORT_PERSONA + " " + " ".join(
    f"Policy {n}: appointments on weekday {n % 5 + 1} run from nine to five; bring your insurance card."
    for n in range(220))  # ~5,000 tokens: a real practice handbook


async def turn(model: ClaudeChatModel, messages: list[dict]) -> StreamStats:
    stats = StreamStats()
    _ = [p async for p in model.stream(messages, 40, stats=stats)]
    return stats


def ask(persona: str, *history: str, notes: str = "") -> list[dict]:
    messages = [{"role": "system", "content": persona}]
    if notes:
        messages.append({"role": "system", "content": notes})
    roles = ("user", "assistant")
    return messages + [{"role": roles[i % 2], "content": text} for i, text in enumerate(history)]


async def test_a_prompt_under_the_minimum_is_not_marked_and_gets_no_cache_hit():
    assert minimum_tokens("claude-haiku-4-5") == 4096
    async with AnthropicDouble(prompt_cache=True) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url)
        first = await turn(model, ask(SHORT_PERSONA, "When are you open?"))
        second = await turn(model, ask(SHORT_PERSONA, "When are you open?", "Nine to five.", "And Saturday?"))
        await model.aclose()
    assert all("cache_control" not in block for r in api.requests for block in r.system)
    for stats in (first, second):
        assert stats.extra["cache_read_input_tokens"] == 0 and stats.extra["cache_creation_input_tokens"] == 0


async def test_a_long_persona_is_cached_once_and_read_on_every_later_turn_despite_new_notes():
    async with AnthropicDouble(prompt_cache=True) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url)
        first = await turn(model, ask(LONG_PERSONA, "When are you open?", notes="Caller: Ana."))
        second = await turn(model, ask(LONG_PERSONA, "When are you open?", "Nine to five.", "And Saturday?",
                                       notes="Caller: Ana. Asked about hours."))  # the notes changed
        await model.aclose()
    assert first.extra["cache_creation_input_tokens"] >= 4096 and first.extra["cache_read_input_tokens"] == 0
    assert second.extra["cache_read_input_tokens"] >= 4096  # the persona, although the notes changed
    body = api.requests[1].body
    assert "cache_control" in body["system"][0] and "cache_control" not in body["system"][1]
    assert "Asked about hours" in body["system"][1]["text"]  # what changes sits after the breakpoint


async def test_a_long_conversation_is_read_from_the_cache_on_the_next_turn():
    history = [f"Line {n}: " + "I would like to go over the details of my treatment plan once more. " * 12
               for n in range(30)]  # ~6,000 tokens of conversation
    async with AnthropicDouble(prompt_cache=True) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url)
        await turn(model, ask(SHORT_PERSONA, *history, "And the cost?"))
        later = await turn(model, ask(SHORT_PERSONA, *history, "And the cost?", "About 200.", "Thanks, and when?"))
        await model.aclose()
    assert later.extra["cache_read_input_tokens"] >= 4096  # the history up to the previous turn
    marked = [m for m in api.requests[1].body["messages"]
              if isinstance(m["content"], list) and any("cache_control" in b for b in m["content"])]
    assert len(marked) == 1 and marked[0] is not api.requests[1].body["messages"][-1]
