"""The cloud brain on the real stack: Claude (the Anthropic double, spoken to by the real SDK from the
brain process) answers, fails, and the fallback chain keeps the caller from waiting.

The double runs in this test process on a free port (its own event loop in a thread); the brain
reaches it through `RINGLINE_BRAIN_ANTHROPIC_BASE_URL`. It answers with a 350 ms first token (about
what Claude Haiku takes) and fails the requests a test plans to fail.

The issue's acceptance criterion: every question is answered within 2 s of the caller finishing
speaking (mouth-to-ear), even when Claude fails. Measured here (2 shared cores): a Claude answer
0.95-1.0 s, a 529 handed to the local model ~1.03 s, a stall ~1.75 s (it spends the whole 1.0 s
Claude budget before the local model starts). So the margin is ~1 s, but only ~0.25 s for the
stall: a loaded machine can push that case over; the budget arithmetic is in the brain's settings.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from ringline.caller import CallResult, place_call
from ringline.caller.report import format_result
from ringline.caller.speech import load_synth, say
from ringline.stack import Stack

from doubles.anthropic import AnthropicDouble, AnthropicFaults
from doubles.common import MOUTH_TO_EAR_LIMIT_MS

pytestmark = pytest.mark.e2e

CLAUDE = AnthropicFaults(first_token_ms=350, token_ms=15)
OVERLOADED = AnthropicFaults(reject_status=529)
STALLED = AnthropicFaults(stall_after=2)  # message_start and ping, then nothing


class PlannedApi(AnthropicDouble):
    """Streamed requests get `plan[i]`'s faults, the i-th since `expect`; the warm-up answers at once."""

    def __init__(self) -> None:
        super().__init__(default_reply="The capital of France is Paris.")
        self.plan: list[AnthropicFaults] = [CLAUDE]
        self.streamed: list[dict[str, Any]] = []

    def expect(self, *plan: AnthropicFaults) -> None:
        self.plan, self.streamed = list(plan), []

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if body.get("stream"):
            self.streamed.append(body)
            self.faults = self.plan[min(len(self.streamed), len(self.plan)) - 1]
        else:
            self.faults = AnthropicFaults()
        return await super()._messages(request)


@pytest.fixture(scope="module")
def api() -> Iterator[PlannedApi]:
    double = PlannedApi()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="anthropic-double", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(double.__aenter__(), loop).result(10)
    yield double
    asyncio.run_coroutine_threadsafe(double.__aexit__(None, None, None), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    loop.close()


@pytest.fixture(scope="module")
def cloud_stack(api: PlannedApi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    # The default after-call summary: by Claude, never by the local model the next call needs.
    env = {"ANTHROPIC_API_KEY": "test", "RINGLINE_BRAIN_ANTHROPIC_BASE_URL": api.url}
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline-cloud"), quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def questions() -> list[Any]:
    voice = load_synth(threads=1)
    return [say(voice, "What is the capital of France?"), say(voice, "And what is the capital of Spain?")]


def call(stack: Stack, utterances: list[Any]) -> CallResult:
    # A caller who hears "One moment." waits for the answer: 3 s of quiet, not 1 s, ends a reply.
    result = asyncio.run(place_call(stack.edge_url, utterances, nats_url=stack.url, reply_timeout=20,
                                    record_timeout=10, quiet_s=3.0))
    print(format_result(result))  # shown when a test fails
    return result


def _is_summary(body: dict[str, Any]) -> bool:
    from ringline.services.brain.summary import NOTES_SYSTEM

    system = body.get("system") or []
    text = system if isinstance(system, str) else " ".join(part.get("text", "") for part in system)
    return NOTES_SYSTEM.strip()[:60] in text


def llm_events(result: CallResult) -> list[dict[str, Any]]:
    assert result.record is not None, result.record_error
    return [e for e in result.record.events if e.get("name") == "turn.llm"]


@pytest.mark.parametrize("failure", [OVERLOADED, STALLED], ids=["529", "stall"])
def test_claude_answers_then_fails_and_the_caller_still_hears_an_answer_without_a_long_wait(
        cloud_stack: Stack, api: PlannedApi, questions: list[Any], failure: AnthropicFaults) -> None:
    api.expect(CLAUDE, failure)
    result = call(cloud_stack, questions)
    assert result.ok, result.problems
    _greeting, first, second = [t for t in result.turns if t.speaker == "agent"]
    for answer in (first, second):
        print(f"mouth-to-ear {answer.mouth_to_ear_ms} ms, stages {answer.stages_ms}")
        # The limit and why it is not the 2 s: see MOUTH_TO_EAR_LIMIT_MS.
        assert answer.mouth_to_ear_ms is not None and answer.mouth_to_ear_ms < MOUTH_TO_EAR_LIMIT_MS, answer
    assert "paris" in first.text.lower()
    assert second.text  # the local model's answer, or the recovery line

    # Claude was asked both questions, with the fast model (no keyword, short questions); a
    # later request, if any, is the brain's after-call summary (its own system prompt).
    turns = [body for body in api.streamed if not _is_summary(body)]
    assert [body["model"] for body in turns] == ["claude-haiku-4-5", "claude-haiku-4-5"]
    # The default persona is far under Haiku 4.5's minimum cacheable prefix (4,096 tokens): asking
    # for a cache breakpoint there would cache nothing, so none is sent (issue 13, prompt caching).
    assert all("cache_control" not in block for block in turns[0]["system"])

    # The call record says who served each turn and that the second fell back.
    one, two = llm_events(result)
    assert one["provider"] == "anthropic" and one["fallbacks"] == []
    assert one["usage"]["llm_model"] == "claude-haiku-4-5" and one["usage"]["output_tokens"] > 0
    assert two["provider"] in ("local", "recovery")
    assert two["fallbacks"][0]["from"] == "anthropic" and two["fallbacks"][0]["to"] == "local"
    record = result.record
    assert record is not None
    agent_turns = {t.turn_id: t for t in record.turns if t.speaker == "agent"}
    assert agent_turns[one["turn_id"]].providers["llm"] == "anthropic"
    assert agent_turns[two["turn_id"]].providers["llm"] == two["provider"]
    assert agent_turns[one["turn_id"]].cost["llm"] > 0  # priced by the memory service
    assert any(e.get("name") == "llm.warmup" for e in record.events)
