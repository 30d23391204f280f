"""The fallback chain over fake models: who answers a turn, what is reported, what the caller hears."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.base import Capabilities, LLMError, StreamStats
from ringline.services.brain.llm.build import build_chat_model
from ringline.services.brain.llm.fallback import FallbackChatModel, Link, without_tools
from ringline.services.brain.llm.routing import RoutingRule
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.service

QUESTION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


class Overloaded(Exception):
    status_code = 529


class Refused(Exception):
    status_code = 429


def named(model, name: str):
    model.model = name
    return model


def chain(*links: Link, rule: RoutingRule | None = None) -> FallbackChatModel:
    return FallbackChatModel(list(links), rule or RoutingRule(mode="always"))


async def collect(model, stats: StreamStats, messages=QUESTION) -> str:
    return "".join([p async for p in model.stream(messages, 40, stats=stats)])


async def test_an_error_before_the_first_token_hands_the_turn_to_the_next_link(scripted):
    strong = named(scripted([], fail_with=Refused("rate limited")), "big")
    fast = named(scripted(["Paris."]), "small")
    model = chain(Link("strong", strong, 1.0, budget="cloud", strong=True), Link("fast", fast, 1.0, budget="cloud"))
    stats = StreamStats()
    assert await collect(model, stats) == "Paris."
    assert (stats.provider, stats.model) == ("fast", "small")
    (fallback,) = stats.extra["fallbacks"]
    assert (fallback["from"], fallback["to"], fallback["reason"]) == ("strong", "fast", "HTTP 429")
    assert fallback["ms"] >= 0
    assert len(strong.calls) == len(fast.calls) == 1


async def test_a_stall_spends_the_shared_budget_and_the_next_vendor_takes_over(scripted):
    strong = scripted(["late"], first_delay=30)
    fast = scripted(["never asked"])
    local = scripted(["Paris, I think."])
    model = chain(Link("strong", strong, 0.2, budget="cloud", strong=True), Link("fast", fast, 0.2, budget="cloud"),
                  Link("local", local, 0.5))
    stats = StreamStats()
    assert await collect(model, stats) == "Paris, I think."
    assert stats.provider == "local" and strong.stopped == 1 and fast.calls == []
    assert [(f["from"], f["to"]) for f in stats.extra["fallbacks"]] == [("strong", "fast"), ("fast", "local")]
    assert "no first token" in stats.extra["fallbacks"][0]["reason"]
    assert stats.extra["fallbacks"][1]["reason"] == "its first-token budget was spent"


async def test_a_failure_after_the_first_token_is_not_repeated_by_another_model(scripted):
    fast = scripted(["The capital", " is"], fail_with=Overloaded("mid-stream"))
    local = scripted(["Paris."])
    model = chain(Link("fast", fast, 1.0), Link("local", local, 1.0))
    stats = StreamStats()
    pieces: list[str] = []
    with pytest.raises(LLMError):
        async for piece in model.stream(QUESTION, 40, stats=stats):
            pieces.append(piece)
    assert pieces == ["The capital", " is"] and local.calls == []
    assert stats.provider == "fast" and stats.extra["fallbacks"] == []


async def test_when_every_link_fails_the_chain_fails_and_names_the_recovery_line(scripted):
    model = chain(Link("fast", scripted([], fail_with=Overloaded("busy")), 1.0),
                  Link("local", scripted([], fail_with=RuntimeError("not loaded")), 1.0))
    stats = StreamStats()
    with pytest.raises(LLMError, match="every model failed"):
        await collect(model, stats)
    assert stats.provider == "recovery"
    assert [(f["from"], f["to"]) for f in stats.extra["fallbacks"]] == [("fast", "local"), ("local", "recovery")]


async def test_the_strong_link_is_used_only_when_the_rule_picks_it(scripted):
    strong, fast = scripted(["Long answer."]), scripted(["Short answer."])
    rule = RoutingRule(mode="rule", min_words=5, keywords=("refund",))
    model = chain(Link("strong", strong, 1.0, strong=True), Link("fast", fast, 1.0), rule=rule)
    short, long_ = StreamStats(), StreamStats()
    assert await collect(model, short) == "Short answer."
    ask = [{"role": "user", "content": "I need to explain a rather long and winding problem to you"}]
    assert await collect(model, long_, ask) == "Long answer."
    keyword = StreamStats()
    assert await collect(model, keyword, [{"role": "user", "content": "Can I get a refund?"}]) == "Long answer."
    assert (short.extra["route"], long_.extra["route"], keyword.extra["route"]) == (
        "fast", "12 words", "keyword 'refund'")


async def test_a_model_without_tools_gets_the_tool_answers_as_notes(scripted):
    local = scripted(["It shipped."])
    model = chain(Link("local", local, 1.0))
    history = [*QUESTION,
               {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "name": "order", "arguments": {}}]},
               {"role": "tool", "tool_call_id": "t1", "name": "order", "content": '{"status": "shipped"}',
                "is_error": False}]
    assert await collect(model, StreamStats(), history) == "It shipped."
    answered = {"role": "system", "content": 'The order tool answered: {"status": "shipped"}'}
    assert local.calls[0] == [*QUESTION, answered]
    assert without_tools(QUESTION) == QUESTION


async def test_a_link_that_cannot_load_is_left_out(scripted):
    class Broken(type(scripted([]))):
        async def load(self) -> None:
            raise LLMError("weights missing")

    model = chain(Link("local", Broken(["never"]), 1.0), Link("fast", scripted(["Paris."]), 1.0))
    await model.load()
    stats = StreamStats()
    assert await collect(model, stats) == "Paris." and stats.extra["fallbacks"] == []
    only_broken = chain(Link("local", Broken([]), 1.0))
    with pytest.raises(LLMError, match="could be loaded"):
        await only_broken.load()


def test_a_turn_reports_the_serving_model_first_and_sums_its_rounds():
    from ringline.contracts.pricing import Usage
    from ringline.services.brain.accounting import turn_usages

    first = StreamStats(model="claude-haiku-4-5", input_tokens=10, output_tokens=3,
                        extra={"failed_usage": [Usage(llm_model="claude-sonnet-4-5", input_tokens=25)]})
    second = StreamStats(model="claude-haiku-4-5", input_tokens=40, output_tokens=7,
                         extra={"cache_read_input_tokens": 900})
    served, other = turn_usages([first, second])
    assert (served.llm_model, served.input_tokens, served.output_tokens, served.cache_read_input_tokens) == (
        "claude-haiku-4-5", 50, 10, 900)
    assert (other.llm_model, other.input_tokens) == ("claude-sonnet-4-5", 25)


def test_the_chain_is_built_from_settings_without_loading_anything(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    assert build_chat_model(BrainSettings()).provider == "local"
    model = build_chat_model(BrainSettings(anthropic_api_key="sk-test"))
    assert isinstance(model, FallbackChatModel)
    assert [(link.name, link.model.model, link.first_token_s, link.strong) for link in model.links] == [
        ("anthropic-strong", "claude-sonnet-4-6", 1.0, True),
        ("anthropic", "claude-haiku-4-5", 1.0, False),
        ("local", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 0.4, False),
    ]
    assert model.links[0].budget == model.links[1].budget != model.links[2].budget
    assert model.capabilities.tools and not model.links[2].model.loaded
    monkeypatch.setenv("RINGLINE_BRAIN_CHAIN", "anthropic, local")
    monkeypatch.setenv("RINGLINE_BRAIN_STRONG_KEYWORDS", "refund, speak to a manager")
    settings = BrainSettings(anthropic_api_key="sk-test")
    assert settings.resolved_chain == ("anthropic", "local")
    assert settings.strong_keywords == ["refund", "speak to a manager"]


# -- as the caller hears it -------------------------------------------------------------------

async def test_the_turn_event_and_timing_name_the_link_that_served_and_the_fallback(make_harness, scripted, until):
    strong = named(scripted([], fail_with=Overloaded("busy")), "big")
    local = named(scripted(["Paris is the capital."]), "tiny")
    model = chain(Link("anthropic", strong, 1.0), Link("local", local, 1.0))
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the capital of France?")
        await until(lambda: h.llm_events())
        assert h.said("answer") == "Paris is the capital."
        assert all(c.timing.llm_provider == "local" for c in h.answers())
        data = h.llm_events()[0].data
        assert (data["provider"], data["model"], data["outcome"]) == ("local", "tiny", "answer")
        assert [(f["from"], f["to"], f["reason"]) for f in data["fallbacks"]] == [("anthropic", "local", "HTTP 529")]
        assert data["usage"]["llm_model"] == "tiny" and data["usage"]["output_tokens"] == 1


async def test_when_everything_fails_the_caller_hears_the_recovery_line(make_harness, scripted, until):
    model = chain(Link("anthropic", scripted([], fail_with=Overloaded("busy")), 1.0),
                  Link("local", scripted([], fail_with=RuntimeError("not loaded")), 0.2))
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Hello?")
        await until(lambda: h.llm_events())
        (chunk,) = h.answers()
        assert chunk.kind == "recovery" and chunk.text == h.settings.recovery_line
        assert chunk.timing.llm_provider == "recovery"
        data = h.llm_events()[0].data
        assert data["provider"] == "recovery" and data["outcome"] == "recovery"
        assert [f["to"] for f in data["fallbacks"]] == ["local", "recovery"]


async def test_a_chain_that_only_stalls_says_one_moment_then_the_recovery_line(make_harness, scripted, until):
    model = chain(Link("anthropic", scripted([], fail_with=Overloaded("busy")), 1.0),
                  Link("local", scripted(["late"], first_delay=30), 0.2))
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Hello?")
        await until(lambda: h.llm_events(), 8)  # the filler at 1 s, the recovery line at give_up (4.5 s)
        assert h.said() == f"One moment. {h.settings.recovery_line}"
        data = h.llm_events()[0].data
        assert data["provider"] == "recovery"


async def test_the_trace_shows_the_serving_link_and_each_fallback(make_harness, scripted, until):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    model = chain(Link("anthropic", named(scripted([], fail_with=Refused("slow down")), "big"), 1.0),
                  Link("local", named(scripted(["Paris."]), "tiny"), 1.0))
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Capital of France?")
        await until(lambda: h.llm_events())
        await until(lambda: any(s.name == "turn" for s in exporter.get_finished_spans()))
    (llm,) = [s for s in exporter.get_finished_spans() if s.name == "llm"]
    assert llm.attributes["llm.provider"] == "local" and llm.attributes["llm.model"] == "tiny"
    assert llm.attributes["llm.fallbacks"] == 1
    (event,) = [e for e in llm.events if e.name == "llm.fallback"]
    assert (event.attributes["from"], event.attributes["to"], event.attributes["reason"]) == (
        "anthropic", "local", "HTTP 429")


class _Warmed:
    """Mixed into a scripted model: counts the prefixes it was asked to warm."""

    def __init__(self, *args, local: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.warmed: list = []
        if local:
            self.capabilities = Capabilities(streaming=True, prompt_cache=True, local=True)

    async def warm(self, messages, tools=()):
        self.warmed.append(messages)
        return None


def warmed(scripted, pieces, **kwargs):
    return type("WarmedScripted", (_Warmed, scripted), {})(pieces, **kwargs)


async def test_a_healthy_chain_warms_only_its_first_link_and_a_failing_one_warms_the_fallback_too(scripted):
    cloud = warmed(scripted, ["Paris."])
    local = warmed(scripted, ["Paris, I think."], local=True)
    model = chain(Link("cloud", cloud, 1.0), Link("local", local, 1.0))
    await model.warm(QUESTION[:1])
    assert (len(cloud.warmed), len(local.warmed)) == (1, 0)  # no local work per call while the cloud answers
    cloud.fail_with, cloud.pieces = Overloaded("busy"), []
    assert await collect(model, StreamStats()) == "Paris, I think."
    await model.warm(QUESTION[:1])  # the next call: its turns will land on the local model
    assert (len(cloud.warmed), len(local.warmed)) == (2, 1)


async def test_the_after_call_chain_never_uses_the_local_model_nor_says_a_filler(scripted):
    from ringline.services.brain.aftercall import summary_model
    from ringline.services.brain.summary import CallText, summarise

    cloud = named(scripted([], first_delay=0.3, fail_with=Overloaded("busy")), "haiku")
    local = warmed(scripted, ["Summary: The caller asked about Paris.\nName: none\nOpen: none\nLikes: none"],
                   local=True)
    live = FallbackChatModel([Link("cloud", cloud, 0.05), Link("local", local, 0.05)], RoutingRule(mode="always"),
                             filler_after_s=0.01)
    background = summary_model(live)
    assert background is not None and [link.name for link in background.links] == ["cloud"]
    call = CallText([("assistant", "Hello, how can I help?"), ("user", "What is the capital of France?")],
                    caller_words="What is the capital of France?")
    notes = await summarise(call, background, 80, 2.0)
    assert notes.by == "rules" and "One moment" not in notes.summary
    assert local.calls == []  # the live calls keep the local worker
    only_local = FallbackChatModel([Link("local", local, 0.05)], RoutingRule(mode="always"))
    assert summary_model(only_local) is None
