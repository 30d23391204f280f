"""The real local model (llama.cpp + Qwen2.5-Coder-0.5B-Instruct GGUF assembled from PyPI parts)."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("llama_cpp")

from ringline.services.brain.llm.base import StreamStats
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.integration


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": BrainSettings().persona}, {"role": "user", "content": question}]


async def test_capital_of_france_through_the_service(local_model, make_harness, until):
    async with make_harness(local_model, llm_first_token_timeout_s=10.0) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the capital of France?")
        await until(lambda: any(c.final for c in h.answers()), timeout=30)
        await until(lambda: h.llm_events())

    chunks = h.answers()
    text = " ".join(c.text for c in chunks)
    assert "Paris" in text
    assert all(c.kind == "answer" for c in chunks) and chunks[-1].final
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert len(text.split()) <= 45, f"a phone reply should be short: {text!r}"
    assert not any(ch in text for ch in "*#`")
    data = h.llm_events()[0].data
    assert data["provider"] == "local" and 0 < data["tokens"] <= h.settings.max_reply_tokens
    usage = data["usage"]  # priced at 0 by the memory service ("local" prefix), tokens still counted
    assert usage["llm_model"] == "local/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    assert usage["output_tokens"] == data["tokens"] and usage["input_tokens"] > 20
    timing = chunks[0].timing
    assert timing.first_token_at and timing.first_chunk_at >= timing.first_token_at


async def test_says_it_is_an_ai_when_asked(local_model):
    reply = "".join([p async for p in local_model.stream(ask("Are you a real person?"), 40)])
    assert "AI" in reply


async def test_cancelled_generation_stops_and_the_next_call_runs(local_model):
    stats = StreamStats()
    stream = local_model.stream(ask("Count slowly from one to one hundred."), 200, stats=stats)
    async for _ in stream:
        if stats.pieces >= 3:
            break
    await stream.aclose()
    started = time.perf_counter()
    reply = "".join([p async for p in local_model.stream(ask("What is two plus two?"), 20)])
    assert reply and time.perf_counter() - started < 5, "the worker must stop the abandoned generation"


async def test_concurrent_calls_are_serialized_and_both_answered(local_model):
    async def one(question: str) -> str:
        return "".join([p async for p in local_model.stream(ask(question), 30)])

    first, second = await asyncio.gather(one("What is the capital of Spain?"), one("What is the capital of Italy?"))
    assert "Madrid" in first and "Rome" in second
