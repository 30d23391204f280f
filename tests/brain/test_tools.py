"""Tools: webhooks on a real local HTTP server, the filler when they are slow, an apology when they
fail, `end_call`, and the settings that declare them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ringline.contracts.events import CALL_HANGUP, TURN_TOOL
from ringline.services.brain.llm.base import Capabilities, ChatModel, Messages, StreamStats, ToolCall, ToolSpec
from ringline.services.brain.settings import BrainSettings
from ringline.services.brain.tools import ToolBox, WebhookTool

pytestmark = pytest.mark.service


class ToolUsingModel(ChatModel):
    """Asks for `order_status` on the caller's words, then reads the tool's answer out."""

    provider = "fake-tools"
    model = "tool-user"
    capabilities = Capabilities(streaming=True, tools=True)

    def __init__(self, say_first: str = "", call: str = "order_status") -> None:
        self.say_first = say_first
        self.call = call
        self.requests: list[tuple[Messages, tuple[ToolSpec, ...]]] = []

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats,
                           tools: tuple[ToolSpec, ...] = ()) -> AsyncIterator[str | ToolCall]:
        self.requests.append((messages, tools))
        last = messages[-1]
        if last["role"] == "tool":
            result = json.loads(last["content"])
            yield f"Your order is {result.get('status', 'unknown')}."
            return
        if self.say_first:
            yield self.say_first
        yield ToolCall(id="call_1", name=self.call, arguments={"order_id": "4521"})


@pytest.fixture
async def webhook():
    """A local order-status webhook; `state` sets its delay and status code."""
    state: dict[str, Any] = {"delay": 0.0, "status": 200, "bodies": []}

    async def order_status(request: web.Request) -> web.Response:
        state["bodies"].append(await request.json())
        await asyncio.sleep(state["delay"])
        if state["status"] != 200:
            return web.json_response({"error": "boom"}, status=state["status"])
        return web.json_response({"order_id": "4521", "status": "out for delivery"})

    app = web.Application()
    app.router.add_post("/orders", order_status)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/orders", state
    await runner.cleanup()


def order_tool(url: str, timeout_s: float = 3.0) -> dict[str, Any]:
    return {"name": "order_status", "description": "Delivery status of an order.", "url": url,
            "timeout_s": timeout_s, "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                                                  "required": ["order_id"]}}


async def ask_about_order(h, until):
    call_id = await h.start_call()
    await h.greeted()
    await h.say(call_id, "Where is my order 4521?", utterance_id="u1")
    await until(lambda: any(c.final for c in h.answers()), timeout=5)
    await until(lambda: h.named(TURN_TOOL))
    return call_id


async def test_a_slow_tool_gets_a_filler_then_the_answer(make_harness, webhook, until):
    url, state = webhook
    state["delay"] = 0.6
    model = ToolUsingModel()
    async with make_harness(model, tools=[order_tool(url)], filler_after_ms=150) as h:
        call_id = await ask_about_order(h, until)
        chunks = h.answers()
        assert [(c.kind, c.text) for c in chunks if c.text] == [
            ("filler", "Let me check that."), ("answer", "Your order is out for delivery.")]
        assert len({c.turn_id for c in chunks}) == 1 and chunks[-1].final
        assert state["bodies"] == [{"tool": "order_status", "arguments": {"order_id": "4521"}, "call_id": call_id}]

        (event,) = h.named(TURN_TOOL)
        assert event.data["name"] == "order_status" and event.data["ok"] is True
        assert event.data["ms"] >= 550 and 140 <= event.data["filler_ms"] < 550
        tools = model.requests[0][1]
        assert [t.name for t in tools] == ["order_status", "end_call"]
        assert tools[0].parameters["required"] == ["order_id"]


async def test_a_fast_tool_needs_no_filler_and_its_answer_stays_in_the_history(make_harness, webhook, until):
    url, _ = webhook
    model = ToolUsingModel(say_first="Sure.")
    async with make_harness(model, tools=[order_tool(url)], filler_after_ms=700) as h:
        call_id = await ask_about_order(h, until)
        assert [c.text for c in h.answers() if c.text] == ["Sure.", "Your order is out for delivery."]
        assert h.named(TURN_TOOL)[0].data["filler_ms"] is None
        await h.played()
        await h.say(call_id, "Thanks. And when?", utterance_id="u2")
        await until(lambda: len(model.requests) == 4)
        history = model.requests[2][0]
        assert [m["role"] for m in history[1:]] == ["assistant", "user", "assistant", "tool", "assistant", "user"]
        assert history[3]["tool_calls"] == [{"id": "call_1", "name": "order_status",
                                             "arguments": {"order_id": "4521"}}]
        assert history[3]["content"] == "Sure." and "out for delivery" in history[4]["content"]


@pytest.mark.parametrize("failure", ["status", "timeout"])
async def test_a_failing_or_slow_tool_gets_an_apology(make_harness, webhook, until, failure):
    url, state = webhook
    if failure == "status":
        state["status"] = 500  # at once: no filler (the threshold is far above a local round trip)
    else:
        state["delay"] = 2.0
    filler_after_ms = 200 if failure == "timeout" else 3000
    async with make_harness(ToolUsingModel(), tools=[order_tool(url, timeout_s=0.5)],
                            filler_after_ms=filler_after_ms) as h:
        await ask_about_order(h, until)
        spoken = [(c.kind, c.text) for c in h.answers() if c.text]
        assert spoken[-1] == ("answer", "Sorry, I couldn't look that up right now.")
        assert spoken[:-1] == ([("filler", "Let me check that.")] if failure == "timeout" else [])
        data = h.named(TURN_TOOL)[0].data
        assert data["ok"] is False
        assert data["error"] == ("HTTP 500" if failure == "status" else "timed out after 0.5s")


async def test_the_model_can_end_the_call(make_harness, until):
    model = ToolUsingModel(say_first="Glad I could help. Goodbye!", call="end_call")
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "That's everything, thanks.")
        await until(lambda: any(c.action == "hangup" for c in h.controls), timeout=3)
        assert h.said() == "Glad I could help. Goodbye!"
        assert h.answers()[-1].kind == "goodbye" and h.answers()[-1].final
        assert h.named(CALL_HANGUP)[0].data["goodbye"] == "heard"
        assert len(model.requests) == 1, "no round trip after end_call"


async def test_a_silent_end_call_still_says_goodbye(make_harness, until):
    async with make_harness(ToolUsingModel(call="end_call")) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Bye.")  # a tool-using model decides itself; the phrase rule is off
        await until(lambda: any(c.action == "hangup" for c in h.controls), timeout=3)
        assert [(c.kind, c.text) for c in h.answers()] == [("goodbye", "Thanks for calling. Goodbye!")]


async def test_the_local_model_declares_no_tool_use(scripted):
    from ringline.services.brain.llm.llama import LlamaChatModel

    assert LlamaChatModel.capabilities.tools is False
    model = scripted(["Hi."])  # a model without tools never receives them
    assert [p async for p in model.stream([], 10, tools=[ToolSpec("x", "y")])] == ["Hi."]


def test_tools_come_from_json_settings_and_a_yaml_file(monkeypatch, tmp_path):
    monkeypatch.setenv("RINGLINE_BRAIN_TOOLS", json.dumps([order_tool("http://127.0.0.1:9/orders")]))
    tools_file = tmp_path / "tools.yaml"
    tools_file.write_text(
        "tools:\n"
        "  - name: book_table\n"
        "    description: Book a table.\n"
        "    url: https://example.test/book\n"
        "    timeout_s: 2\n"
        "    parameters: {type: object, properties: {people: {type: integer}}}\n"
    )
    monkeypatch.setenv("RINGLINE_BRAIN_TOOLS_FILE", str(tools_file))
    settings = BrainSettings()
    assert [t.name for t in settings.tools] == ["order_status", "book_table"]
    assert settings.tools[1].timeout_s == 2 and settings.tools[1].parameters["properties"]["people"]
    with pytest.raises(ValueError):
        BrainSettings(tools=[{"name": "bad name!", "description": "x", "url": "ftp://x"}])


async def test_unknown_tools_and_odd_answers_never_raise(webhook):
    url, _state = webhook
    box = ToolBox([WebhookTool(**order_tool(url))])
    unknown = await box.run(ToolCall("c1", "launch_rockets", {}), "call-1")
    assert not unknown.ok and "unknown tool" in unknown.error
    refused = await ToolBox([WebhookTool(**order_tool("http://127.0.0.1:9/x", 0.5))]).run(
        ToolCall("c2", "order_status", {}), "call-1")
    assert not refused.ok and refused.error
    ok = await box.run(ToolCall("c3", "order_status", {"order_id": "1"}), "call-1")
    assert ok.ok and json.loads(ok.content)["status"] == "out for delivery"
    await box.aclose()


async def test_a_model_that_keeps_calling_tools_is_stopped_with_an_apology(make_harness, webhook, until):
    url, state = webhook

    class Looping(ToolUsingModel):
        async def _stream_impl(self, messages, max_tokens, stats, tools=()):
            self.requests.append((messages, tools))
            yield ToolCall(id=f"call_{len(self.requests)}", name="order_status", arguments={"order_id": "1"})

    model = Looping()
    async with make_harness(model, tools=[order_tool(url)], max_tool_rounds=2) as h:
        await ask_about_order(h, until)
        assert h.said() == "Sorry, I couldn't look that up right now."
        assert len(model.requests) == 3 and len(state["bodies"]) == 2
        assert all(tools for _, tools in model.requests), "tools stay declared while the history holds tool use"
