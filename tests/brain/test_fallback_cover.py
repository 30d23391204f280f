"""A slow link of the chain is covered, not replaced: a filler while the next provider keeps going,
then the real answer; the recovery line only when nothing can answer; budgets that follow measured
first-token times."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from ringline.services.brain.llm.base import ChatModel, LLMError, Messages, StreamStats
from ringline.services.brain.llm.budgets import FirstTokenTimes
from ringline.services.brain.llm.build import build_chat_model
from ringline.services.brain.llm.fallback import FILLER, FallbackChatModel, Link
from ringline.services.brain.llm.routing import RoutingRule
from ringline.services.brain.settings import BrainSettings
from ringline.stack import free_port

pytestmark = pytest.mark.service

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]
HEARD_WITHIN_S = 1.3  # the brain's share of "the caller hears something within 2 s" (STT ~0.45 s, TTS ~0.15 s)


class Refused(Exception):
    status_code = 503


async def timed(model: ChatModel, stats: StreamStats, messages: Messages = QUESTION) -> list[tuple[float, str]]:
    started = time.monotonic()
    return [(time.monotonic() - started, piece) async for piece in model.stream(messages, 60, stats=stats)]


async def test_a_slow_link_is_covered_by_a_filler_and_still_answers(scripted):
    slow = scripted(["Paris", " is the capital."], first_delay=1.6)
    down = scripted([], fail_with=Refused("down"))
    model = FallbackChatModel([Link("fast", slow, 0.5), Link("local", down, 0.5)], RoutingRule(mode="never"),
                              filler_after_s=1.0)
    stats = StreamStats()
    pieces = await timed(model, stats)
    assert [p for _, p in pieces] == [FILLER, "Paris", " is the capital."]
    assert pieces[0][0] < HEARD_WITHIN_S and stats.extra["filler_ms"] >= 1000
    assert stats.provider == "fast"  # the slow link was not replaced: it answered
    reasons = [(f["from"], f["to"], f["reason"]) for f in stats.extra["fallbacks"]]
    assert reasons[0][:2] == ("fast", "local") and "still trying" in reasons[0][2]
    assert ("local", "fast", "HTTP 503") in reasons


async def test_the_next_link_answers_while_the_stalled_one_is_cancelled(scripted):
    stalled = scripted(["too late"], first_delay=30)
    local = scripted(["Paris."], first_delay=0.3)
    model = FallbackChatModel([Link("anthropic", stalled, 0.4), Link("local", local, 0.4)], RoutingRule(mode="never"))
    stats = StreamStats()
    pieces = await timed(model, stats)
    assert [p for _, p in pieces] == ["Paris."] and pieces[0][0] < 1.0  # no filler was needed
    assert stats.provider == "local" and stalled.stopped == 1


async def test_the_recovery_line_only_when_nothing_can_answer(scripted):
    never = scripted(["never"], first_delay=30)
    model = FallbackChatModel([Link("anthropic", never, 0.2)], RoutingRule(mode="never"), filler_after_s=0.3,
                              give_up_s=0.8, recovery_line="Sorry, could you say that again?")
    stats = StreamStats()
    pieces = [p for _, p in await timed(model, stats)]
    assert pieces == [FILLER, "Sorry, could you say that again?"] and stats.provider == "recovery"
    quick = FallbackChatModel([Link("anthropic", scripted([], fail_with=Refused("down")), 0.2)],
                              RoutingRule(mode="never"), recovery_line="Sorry?")
    with pytest.raises(LLMError, match="every model failed"):  # nothing said yet: the turn says its line
        await timed(quick, StreamStats())


def test_budgets_follow_measured_first_token_times():
    times = FirstTokenTimes()
    assert times.budget("local", 0.4) == 0.4  # the configured prior until there are measurements
    for seconds in (0.5, 0.6, 0.55, 0.6):
        times.record("local", seconds)
    assert times.budget("local", 0.4) == pytest.approx(1.2)  # a busy box: 2 x p90, not abandoned at 0.4 s
    for seconds in (0.3, 0.25, 0.35):
        times.record("anthropic", seconds)
    assert times.budget("anthropic", 1.0) == pytest.approx(0.7)  # a healthy Claude: stop waiting on it sooner
    for _ in range(20):
        times.record("local", 5.0)
    assert times.budget("local", 0.4) == pytest.approx(1.2)  # never more than 3 x the configured budget


async def test_the_chain_learns_each_links_first_token_time(scripted):
    local = scripted(["Paris."], first_delay=0.25)
    model = FallbackChatModel([Link("local", local, 0.2)], RoutingRule(mode="never"), filler="")
    for _ in range(3):
        await timed(model, StreamStats())
    assert 0.45 <= model.times.budget("local", 0.2) <= 0.6  # 2 x ~0.25 s measured, not the 0.2 s configured


class Slowed(ChatModel):
    """The real local model with its first token held back: a box under load."""

    provider = "llama.cpp"
    capabilities = ChatModel.capabilities

    def __init__(self, inner: ChatModel, delay_s: float) -> None:
        self.inner, self.delay_s, self.model = inner, delay_s, inner.model

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncIterator[str]:
        await asyncio.sleep(self.delay_s)
        async for piece in self.inner.stream(messages, max_tokens):
            yield piece


@pytest.mark.integration
async def test_cloud_keys_set_every_vendor_unreachable_and_a_slow_local_model_still_answers(local_model):
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: every Claude request is refused
    settings = BrainSettings(anthropic_api_key="sk-test", anthropic_base_url=dead)
    assert settings.resolved_chain == ("anthropic-strong", "anthropic", "local")
    model = build_chat_model(settings, {"local": Slowed(local_model, 1.6)})
    await model.load()  # as the service does at start-up (the SDK clients; the local model is loaded)
    persona = {"role": "system", "content": "You answer phone callers in one short sentence."}
    asks = [("What is the capital of France?", ("paris",)), ("How many days are in a week?", ("seven", "7")),
            ("What colour is the sky on a clear day?", ("blue",))]
    for question, expected in asks:
        stats = StreamStats()
        pieces = await timed(model, stats, [persona, {"role": "user", "content": question}])
        first_at, _first = pieces[0]
        assert first_at < HEARD_WITHIN_S, f"{question}: silence for {first_at:.2f}s"
        answer = "".join(p for _, p in pieces if p != FILLER).lower()
        assert any(word in answer for word in expected), f"{question} -> {answer!r}"
        assert stats.provider == "local" and "Sorry" not in answer
        assert [f["from"] for f in stats.extra["fallbacks"]][:2] == ["anthropic", "local"] or \
            "anthropic-strong" not in stats.extra["route"]


async def test_the_wait_between_the_filler_and_the_answer_is_not_a_stall(scripted):
    slow = scripted(["Paris."], first_delay=1.8)  # 0.8 s after the filler, more than the stall timeout
    model = FallbackChatModel([Link("fast", slow, 2.5)], RoutingRule(mode="never"), filler_after_s=1.0)
    stats = StreamStats()
    pieces = [p async for p in model.stream(QUESTION, 60, stats=stats, first_token_timeout=3.0, stall_timeout=0.5)]
    assert pieces == [FILLER, "Paris."] and stats.provider == "fast"


async def test_the_serving_link_still_stalls_out_between_its_own_tokens(scripted):
    stalling = scripted(["Paris", " is the capital."], delay=1.0, first_delay=0.1)
    model = FallbackChatModel([Link("fast", stalling, 1.0)], RoutingRule(mode="never"), filler_after_s=1.0)
    pieces: list[str] = []
    with pytest.raises(LLMError, match=r"no next token within 0\.5s"):
        async for piece in model.stream(QUESTION, 60, first_token_timeout=3.0, stall_timeout=0.5):
            pieces.append(piece)
    assert pieces == ["Paris"]
