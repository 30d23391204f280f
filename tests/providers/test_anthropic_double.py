"""The Anthropic double exercised with the real `anthropic` SDK, and `ClaudeChatModel` over it."""

from __future__ import annotations

import time

import anthropic
import httpx2
import pytest

from ringline.services.brain.llm.base import LLMError, StreamStats
from ringline.services.brain.llm.claude import ClaudeChatModel

from doubles.anthropic import AnthropicDouble, AnthropicFaults, ScriptedReply, ToolCall

pytestmark = pytest.mark.service

SYSTEM = [{"type": "text", "text": "You are Ringline, on the phone.", "cache_control": {"type": "ephemeral"}}]
HANG_UP = {"name": "hang_up", "description": "End the call.",
           "input_schema": {"type": "object", "properties": {"reason": {"type": "string"}}}}
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def client(api: AnthropicDouble, timeout: float = 5.0) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(api_key="sk-ant-test", base_url=api.url, max_retries=0, timeout=timeout)


async def test_streams_text_and_usage_with_cache_fields():
    reply = ScriptedReply("The capital of France is Paris.", input_tokens=12,
                          cache_read_input_tokens=900, cache_creation_input_tokens=40)
    async with AnthropicDouble([reply]) as api:
        async with client(api).messages.stream(model="claude-haiku-4-5", max_tokens=60, system=SYSTEM,
                                               messages=QUESTION, tools=[HANG_UP]) as stream:
            pieces = [t async for t in stream.text_stream]
            message = await stream.get_final_message()
    assert len(pieces) > 1 and "".join(pieces) == reply.text
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (12, 900, 40)
    assert usage.output_tokens > 1
    (request,) = api.requests
    assert request.body["model"] == "claude-haiku-4-5" and request.body["stream"] is True
    assert request.system == SYSTEM and request.tools == [HANG_UP]
    assert request.headers.get("anthropic-version")


async def test_streams_a_tool_call_after_text():
    reply = ScriptedReply("Okay, goodbye!", tools=(ToolCall("hang_up", {"reason": "caller said goodbye"}),))
    async with AnthropicDouble([reply]) as api:
        async with client(api).messages.stream(model="claude-haiku-4-5", max_tokens=60,
                                               messages=QUESTION, tools=[HANG_UP]) as stream:
            text = "".join([t async for t in stream.text_stream])
            message = await stream.get_final_message()
    assert text == "Okay, goodbye!" and message.stop_reason == "tool_use"
    tool = message.content[-1]
    assert tool.type == "tool_use" and tool.name == "hang_up" and tool.input == {"reason": "caller said goodbye"}


async def test_non_streaming_requests_get_a_message():
    async with AnthropicDouble(["Paris."]) as api:
        message = await client(api).messages.create(model="claude-haiku-4-5", max_tokens=10, messages=QUESTION)
    assert message.content[0].text == "Paris."


@pytest.mark.parametrize(("status", "error"), [(429, anthropic.RateLimitError), (529, anthropic.OverloadedError),
                                               (500, anthropic.InternalServerError)])
async def test_http_errors_become_the_sdk_error_types(status, error):
    async with AnthropicDouble(faults=AnthropicFaults(reject_status=status)) as api:
        with pytest.raises(error) as raised:
            async with client(api).messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=QUESTION) as s:
                _ = [t async for t in s.text_stream]
    assert raised.value.status_code == status
    assert raised.value.request_id and raised.value.request_id.startswith("req_")
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "1"


async def test_an_error_event_mid_stream_raises():
    async with AnthropicDouble(faults=AnthropicFaults(error_event_after=1)) as api:
        with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
            async with client(api).messages.stream(model="claude-haiku-4-5", max_tokens=10, messages=QUESTION) as s:
                _ = [t async for t in s.text_stream]


async def test_a_stall_times_out():
    # Mid-stream, the SDK lets its HTTP client's read timeout through as is (not APITimeoutError).
    async with AnthropicDouble(faults=AnthropicFaults(stall_after=4)) as api:
        started = time.monotonic()
        with pytest.raises((anthropic.APITimeoutError, httpx2.ReadTimeout)):
            async with client(api, timeout=0.5).messages.stream(model="claude-haiku-4-5", max_tokens=10,
                                                                messages=QUESTION) as s:
                _ = [t async for t in s.text_stream]
        assert time.monotonic() - started < 1.5


async def test_no_response_headers_is_an_api_timeout():
    async with AnthropicDouble(faults=AnthropicFaults(latency_ms=3000)) as api:
        with pytest.raises(anthropic.APITimeoutError):
            async with client(api, timeout=0.5).messages.stream(model="claude-haiku-4-5", max_tokens=10,
                                                                messages=QUESTION) as s:
                _ = [t async for t in s.text_stream]


# -- the brain's existing Claude provider over the double ------------------------------

async def test_claude_chat_model_streams_and_reports_usage():
    async with AnthropicDouble([ScriptedReply("Paris is the capital.", input_tokens=30, cache_read_input_tokens=500)],
                               faults=AnthropicFaults(first_token_ms=50)) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url, max_retries=0)
        stats = StreamStats()
        text = "".join([p async for p in model.stream([{"role": "system", "content": "Be brief."}, *QUESTION], 40,
                                                       stats=stats)])
        await model.aclose()
    assert text == "Paris is the capital."
    assert stats.input_tokens == 30 and stats.extra["cache_read_input_tokens"] == 500
    assert stats.first_token_ms >= 50
    assert "cache_control" not in api.requests[0].system[0]  # under the model's cache minimum


@pytest.mark.parametrize("faults", [AnthropicFaults(reject_status=429), AnthropicFaults(stall_after=3),
                                    AnthropicFaults(first_token_ms=3000), AnthropicFaults(disconnect_after=4)],
                         ids=["429", "stall", "slow-first-token", "disconnect"])
async def test_claude_chat_model_failures_are_llm_errors_in_bounded_time(faults):
    async with AnthropicDouble(faults=faults) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url, max_retries=0)
        started = time.monotonic()
        with pytest.raises(LLMError):
            _ = [p async for p in model.stream(QUESTION, 40, first_token_timeout=0.5, stall_timeout=0.5)]
        assert time.monotonic() - started < 1.5
        await model.aclose()
