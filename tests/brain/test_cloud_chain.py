"""The Claude links of the chain against the Anthropic double (tests/doubles), with the real SDK.

What the double received shows which model answered; the `turn.llm` event shows what the memory
service will price and record.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from ringline.services.brain.llm.base import StreamStats
from ringline.services.brain.llm.claude import ClaudeChatModel
from ringline.services.brain.llm.fallback import FallbackChatModel, Link
from ringline.services.brain.llm.routing import RoutingRule

from doubles.anthropic import AnthropicDouble, AnthropicFaults, ScriptedReply

pytestmark = pytest.mark.service


FAST, STRONG = "claude-haiku-4-5", "claude-sonnet-4-6"
QUESTION = [{"role": "system", "content": "You are Ringline, on the phone."},
            {"role": "user", "content": "What is the capital of France?"}]


class Api(AnthropicDouble):
    """The double with faults per model (streamed requests only) and a reply chosen per request."""

    def __init__(self, faults: dict[str, AnthropicFaults] | None = None,
                 reply: Callable[[dict[str, Any]], ScriptedReply] | None = None,
                 warm_faults: AnthropicFaults | None = None) -> None:
        super().__init__()
        self.by_model = faults or {}
        self.reply = reply or (lambda body: ScriptedReply("Paris is the capital of France."))
        self.warm_faults = warm_faults or AnthropicFaults()

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        streamed = bool(body.get("stream"))
        self.faults = self.by_model.get(body["model"], AnthropicFaults()) if streamed else self.warm_faults
        self.replies = deque([self.reply(body)])
        return await super()._messages(request)

    @property
    def streamed(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.body.get("stream")]

    @property
    def warmups(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if not r.body.get("stream")]


def claude_chain(api: Api, local, budget_s: float = 1.0, **rule: Any) -> FallbackChatModel:
    def claude(model: str) -> ClaudeChatModel:
        return ClaudeChatModel(api_key="sk-test", base_url=api.url, model=model)

    return FallbackChatModel([
        Link("anthropic-strong", claude(STRONG), budget_s, budget="anthropic", strong=True),
        Link("anthropic", claude(FAST), budget_s, budget="anthropic"),
        Link("local", local, 1.0),
    ], RoutingRule(**rule))


async def ask(model, messages=QUESTION) -> tuple[str, StreamStats]:
    await model.load()  # as the service does at start-up
    stats = StreamStats()
    text = "".join([p async for p in model.stream(messages, 60, stats=stats)])
    await model.aclose()
    return text, stats


async def test_a_429_on_the_strong_model_and_the_fast_model_answers_the_same_turn(scripted):
    local = scripted(["Not me."])
    async with Api({STRONG: AnthropicFaults(reject_status=429)}) as api:
        text, stats = await ask(claude_chain(api, local, mode="always"))
    assert text == "Paris is the capital of France."
    assert [body["model"] for body in api.streamed] == [STRONG, FAST] and local.calls == []
    assert (stats.provider, stats.model) == ("anthropic", FAST)
    assert [(f["from"], f["to"], f["reason"]) for f in stats.extra["fallbacks"]] == [
        ("anthropic-strong", "anthropic", "HTTP 429")]


@pytest.mark.parametrize("faults", [AnthropicFaults(reject_status=500), AnthropicFaults(reject_status=529),
                                    AnthropicFaults(stall_after=2), AnthropicFaults(first_token_ms=5000)],
                         ids=["500", "529", "stall", "slow-first-token"])
async def test_failures_on_both_claude_models_and_the_local_model_answers(scripted, faults):
    local = scripted(["Paris, I believe."])
    async with Api({STRONG: faults, FAST: faults}) as api:
        text, stats = await ask(claude_chain(api, local, budget_s=0.4, mode="always"))
    assert text == "Paris, I believe." and stats.provider == "local"
    hops = [(f["from"], f["to"]) for f in stats.extra["fallbacks"]]
    assert hops == [("anthropic-strong", "anthropic"), ("anthropic", "local")]
    if faults.reject_status:  # an error answer costs nothing: the fast model still gets its try
        assert [body["model"] for body in api.streamed] == [STRONG, FAST]
        assert {f["reason"] for f in stats.extra["fallbacks"]} == {f"HTTP {faults.reject_status}"}
    else:  # a stall spends the Claude budget: straight on to the local model
        assert [body["model"] for body in api.streamed] == [STRONG]
        assert stats.extra["fallbacks"][1]["reason"] == "its first-token budget was spent"
        # the stream had started (message_start): its input tokens are billed, so they are counted
        assert [(u.llm_model, u.input_tokens) for u in stats.extra["failed_usage"]] == [(STRONG, 25)]


async def test_when_everything_fails_the_caller_hears_the_recovery_line(make_harness, scripted, until):
    down = AnthropicFaults(reject_status=529)
    async with Api({STRONG: down, FAST: down}) as api:
        model = claude_chain(api, scripted([], fail_with=RuntimeError("local model is not loaded")))
        await model.load()
        async with make_harness(model) as h:
            call_id = await h.start_call()
            await h.greeted()
            await h.say(call_id, "What is the capital of France?")
            await until(lambda: h.llm_events())
            (chunk,) = h.answers()
            assert (chunk.kind, chunk.text) == ("recovery", h.settings.recovery_line)
            data = h.llm_events()[0].data
            assert data["provider"] == "recovery"
            assert [(f["from"], f["to"]) for f in data["fallbacks"]] == [("anthropic", "local"), ("local", "recovery")]
        await model.aclose()


@pytest.mark.parametrize(("utterance", "model"), [
    ("What is the capital of France?", FAST),
    ("Well my order came last week and the box was damaged and two of the glasses inside were broken "
     "so I would like to know what my options are now", STRONG),
    ("I want a refund.", STRONG),
], ids=["short", "long", "keyword"])
async def test_the_routing_rule_picks_the_strong_model_for_long_or_keyword_utterances(
        make_harness, scripted, until, utterance, model):
    async with Api() as api:
        chain = claude_chain(api, scripted(["Not me."]), min_words=20, keywords=("refund",))
        await chain.load()
        async with make_harness(chain) as h:
            call_id = await h.start_call()
            await h.greeted()
            await h.say(call_id, utterance)
            await until(lambda: h.llm_events())
            data = h.llm_events()[0].data
        await chain.aclose()
    assert [body["model"] for body in api.streamed] == [model]
    assert data["model"] == model and data["provider"] == ("anthropic" if model == FAST else "anthropic-strong")


async def test_the_prompt_cache_is_warmed_at_call_start_and_turns_reuse_its_prefix(make_harness, scripted, until):
    def reply(body: dict[str, Any]) -> ScriptedReply:
        if not body.get("stream"):
            return ScriptedReply("", input_tokens=8, cache_creation_input_tokens=1500)
        return ScriptedReply("Paris is the capital of France.", input_tokens=12, cache_read_input_tokens=1500)

    async with Api(reply=reply) as api:
        chain = claude_chain(api, scripted(["Not me."]))
        await chain.load()
        async with make_harness(chain) as h:
            call_id = await h.start_call()
            greeting = await h.greeted()
            await until(lambda: h.named("llm.warmup"))
            await h.say(call_id, "What is the capital of France?")
            await until(lambda: h.llm_events())
            data = h.llm_events()[0].data
            (warmup,) = h.named("llm.warmup")
        await chain.aclose()
    (warm,) = api.warmups
    (turn,) = api.streamed
    assert warm["max_tokens"] == 1 and warm["model"] == FAST
    assert "cache_control" not in warm["system"][0]  # the default persona is under Haiku's 4,096-token minimum
    assert warm["system"] == turn["system"] and warm["tools"] == turn["tools"]  # the same cached prefix
    assert [t["name"] for t in turn["tools"]] == ["end_call"]  # tool use stays as it was
    # usage for cost: the warm-up on the greeting turn, the answer on its own
    assert warmup.turn_id == greeting.turn_id
    assert warmup.data["usage"] == {"llm_model": FAST, "input_tokens": 8, "output_tokens": 1,
                                    "cache_creation_input_tokens": 1500}
    usage = data["usage"]
    assert (usage["llm_model"], usage["input_tokens"], usage["cache_read_input_tokens"]) == (FAST, 12, 1500)
    assert usage["output_tokens"] > 1 and "cache_creation_input_tokens" not in usage


async def test_a_slow_warm_up_never_delays_the_greeting(make_harness, scripted):
    async with Api(warm_faults=AnthropicFaults(latency_ms=30_000)) as api:
        chain = claude_chain(api, scripted(["Not me."]))
        await chain.load()
        async with make_harness(chain) as h:
            await h.start_call()
            await h.greeted()
            assert len(api.warmups) == 1 and h.named("llm.warmup") == []  # still waiting for its answer
        await chain.aclose()
