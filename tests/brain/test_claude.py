"""`ClaudeChatModel` against a tiny local server speaking Anthropic's streaming Messages SSE."""

from __future__ import annotations

import pytest

from ringline.services.brain.llm.base import LLMError, StreamStats, ToolCall, ToolSpec
from ringline.services.brain.llm.claude import CALL_OPENED, ClaudeChatModel, to_anthropic

pytestmark = pytest.mark.service


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
    # a persona this short is under Haiku's 4,096-token cache minimum: no breakpoint (test_prompt_cache)
    assert body["system"] == [{"type": "text", "text": "You are Ringline, an AI assistant."}]
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


async def test_tool_use_blocks_become_tool_calls_and_results_go_back(fake_anthropic, tool_use_sse):
    base_url, requests, state = fake_anthropic
    state["replies"] = [tool_use_sse("Let me look.", "toolu_01", "order_status", ['{"order', '_id": "45', '21"}'])]
    tool = ToolSpec("order_status", "Delivery status of an order.",
                    {"type": "object", "properties": {"order_id": {"type": "string"}}})
    model = ClaudeChatModel(api_key="sk-test", base_url=base_url, max_retries=0)
    question = [*HISTORY[:2], {"role": "user", "content": "Where is order 4521?"}]
    pieces = [p async for p in model.stream(question, 60, tools=[tool])]
    assert pieces == ["Let me look.", ToolCall("toolu_01", "order_status", {"order_id": "4521"})]
    assert requests[0]["body"]["tools"] == [{"name": "order_status", "description": "Delivery status of an order.",
                                             "input_schema": tool.parameters}]

    state["pieces"] = ["It is out for delivery."]
    follow_up = [*question,
                 {"role": "assistant", "content": "Let me look.", "tool_calls": [
                     {"id": "toolu_01", "name": "order_status", "arguments": {"order_id": "4521"}}]},
                 {"role": "tool", "tool_call_id": "toolu_01", "name": "order_status",
                  "content": '{"status": "out for delivery"}', "is_error": False}]
    assert "".join([p async for p in model.stream(follow_up, 60, tools=[tool])]) == "It is out for delivery."
    await model.aclose()
    assert requests[1]["body"]["messages"][-2:] == [
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_01", "name": "order_status", "input": {"order_id": "4521"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": '{"status": "out for delivery"}'}]},
    ]


async def test_claude_ends_the_call_through_the_service(fake_anthropic, tool_use_sse, make_harness, until):
    base_url, requests, state = fake_anthropic
    state["replies"] = [tool_use_sse("Thanks for calling, goodbye!", "toolu_02", "end_call", ['{"reason": "done"}'])]
    model = ClaudeChatModel(api_key="sk-test", base_url=base_url, max_retries=0)
    await model.load()
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "That's all, thank you.")
        await until(lambda: any(c.action == "hangup" for c in h.controls), timeout=5)
        assert h.said() == "Thanks for calling, goodbye!" and h.answers()[-1].kind == "goodbye"
        assert [c.reason for c in h.controls if c.action == "hangup"] == ["done"]
        assert [t["name"] for t in requests[0]["body"]["tools"]] == ["end_call"]
    await model.aclose()


def test_an_interrupted_turn_and_tool_errors_map_to_anthropic_blocks():
    _system, turns = to_anthropic([
        {"role": "system", "content": "A"},
        {"role": "user", "content": "Where is it?"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "t1", "name": "find", "arguments": {}}]},
        {"role": "tool", "tool_call_id": "t1", "name": "find", "content": '{"error": "HTTP 500"}', "is_error": True},
        {"role": "assistant", "content": "Sorry, I couldn't look that up right now. — [interrupted by the caller]"},
        {"role": "user", "content": "Never mind."},
    ])
    assert turns[1] == {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "find", "input": {}}]}
    assert turns[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": '{"error": "HTTP 500"}', "is_error": True}]}
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant", "user"]
