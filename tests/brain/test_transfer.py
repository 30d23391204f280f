"""Transfer to a human: the `transfer_call` tool is offered only to an agent with a transfer
number; the agent says its hand-over line, waits until the caller has heard it (its mark is
echoed), then asks the edge to move the call (`Control(transfer, target)`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from ringline.contracts.events import CALL_HANGUP
from ringline.services.brain.llm.base import Capabilities, ChatModel, Messages, StreamStats, ToolCall, ToolSpec
from ringline.services.brain.tools import TRANSFER_LINE

pytestmark = pytest.mark.service

HUMAN = "+15550100099"
AGENTS = "agents:\n  - id: support\n    transfer_number: '+1 555 010 0099'\n  - id: sales\n"


def agents_file(tmp_path: Path) -> str:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS)
    return str(path)


class TransferringModel(ChatModel):
    """Says `say_first` (if any), then asks for `transfer_call`."""

    provider = "fake-tools"
    model = "transferrer"
    capabilities = Capabilities(streaming=True, tools=True)

    def __init__(self, say_first: str = "", call: str = "transfer_call") -> None:
        self.say_first = say_first
        self.call = call
        self.requests: list[tuple[Messages, tuple[ToolSpec, ...]]] = []

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats,
                           tools: tuple[ToolSpec, ...] = ()) -> AsyncIterator[str | ToolCall]:
        self.requests.append((messages, tools))
        if messages[-1]["role"] == "tool":  # the tool failed (not offered): say so
            yield "Sorry, I can't put you through."
            return
        if self.say_first:
            yield self.say_first
        yield ToolCall(id="call_1", name=self.call, arguments={"reason": "wants a person"})


def transfers(h) -> list:
    return [c for c in h.controls if c.action == "transfer"]


async def test_the_agent_hands_over_then_transfers_once_its_line_is_heard(make_harness, until, tmp_path) -> None:
    model = TransferringModel(say_first="Of course, I'll put you through to a colleague now.")
    async with make_harness(model, play_s=None, RINGLINE_AGENTS_FILE=agents_file(tmp_path)) as h:
        call_id = await h.start_call(agent_id="support")
        greeting = await h.greeted()
        await h.heard(greeting)
        await h.say(call_id, "Can I speak to a real person, please?")
        await until(lambda: any(c.final for c in h.answers()), timeout=3)
        assert h.said() == "Of course, I'll put you through to a colleague now."
        final = h.answers()[-1]
        assert final.kind == "goodbye" and final.final and len({c.turn_id for c in h.answers()}) == 1
        assert [t.name for t in model.requests[0][1]] == ["end_call", "transfer_call"]
        await asyncio.sleep(0.3)
        assert transfers(h) == [], "transferred before the caller heard the hand-over line"
        await h.heard(final)
        await until(lambda: transfers(h), timeout=3)
        (control,) = transfers(h)
        assert control.target == HUMAN and control.call_id == call_id and control.reason == "wants a person"
        assert not [c for c in h.controls if c.action == "hangup"] and not h.named(CALL_HANGUP)
        assert len(model.requests) == 1, "no round trip after transfer_call"
        (llm,) = h.llm_events()
        assert llm.data["outcome"] == "transfer" and llm.data["transfer_to"] == HUMAN


async def test_a_silent_transfer_still_says_the_hand_over_line(make_harness, until, tmp_path) -> None:
    async with make_harness(TransferringModel(), RINGLINE_AGENTS_FILE=agents_file(tmp_path)) as h:
        call_id = await h.start_call(agent_id="support")
        await h.greeted()
        await h.say(call_id, "Put me through to sales.")
        await until(lambda: transfers(h), timeout=3)
        assert [(c.kind, c.text) for c in h.answers()] == [("goodbye", TRANSFER_LINE)]


async def test_without_a_transfer_number_the_tool_is_not_offered(make_harness, until) -> None:
    model = TransferringModel()
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Can I speak to a person?")
        await until(lambda: any(c.final for c in h.answers()), timeout=3)
        assert [t.name for t in model.requests[0][1]] == ["end_call"]
        await h.played()
        assert transfers(h) == []  # a model that asks anyway gets "unknown tool": nothing is transferred
        assert h.answers()[-1].kind != "goodbye"


async def test_only_the_agent_with_a_transfer_number_offers_the_tool(make_harness, until, tmp_path) -> None:
    model = TransferringModel(say_first="One moment.")
    async with make_harness(model, RINGLINE_AGENTS_FILE=agents_file(tmp_path)) as h:
        call_id = await h.start_call(agent_id="support")
        await h.greeted()
        await h.say(call_id, "A human, please.")
        await until(lambda: transfers(h), timeout=3)
        assert transfers(h)[0].target == HUMAN
        other = await h.start_call("call-2", agent_id="sales")
        await h.say(other, "A human, please.")
        await until(lambda: len(model.requests) >= 2, timeout=3)
        assert [t.name for t in model.requests[-1][1]] == ["end_call"]
