"""Memory across calls on the real stack (nats-server, the five services, the offline models): a
caller who gave their name is greeted by it next time, by the same agent only, and asked about
what they wanted; another number, or another agent, gets the usual greeting."""

from __future__ import annotations

import asyncio
import time

import pytest

from ringline.caller import CallResult, Say, Wait
from ringline.contracts.messages.recall import CallerMemory
from ringline.memory_cli import get_memory
from ringline.records import get_call
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

RECEPTION, SALES = "+15550100011", "+15550100012"
SAM, OTHER = "+15550100077", "+15550100078"
RECEPTION_GREETING = "Hi, this is Ava, an AI assistant at Bell's Bistro. How can I help?"
SALES_GREETING = "Hi, this is Robin, an AI assistant in sales. How can I help?"
AGENTS = f"""
agents:
  - id: reception
    name: Ava
    numbers: ["{RECEPTION}"]
    greeting: "{RECEPTION_GREETING}"
  - id: sales
    name: Robin
    numbers: ["{SALES}"]
    greeting: "{SALES_GREETING}"
"""
def greeting(result: CallResult) -> str:
    record = result.record
    assert record is not None, result.record_error
    return next(t.text for t in record.turns if t.speaker == "agent")


def greeting_ms(result: CallResult) -> float:
    """From the call being placed (the webhook) to the greeting's first audio, as the caller hears it."""
    first = next(t for t in result.turns if t.speaker == "agent")
    return round((first.started_at - result.started_at) * 1000)


def remembered(stack: Stack, agent: str, caller: str, timeout: float = 60.0) -> CallerMemory:
    """The caller's memory, once the brain has recorded the call into it (after the call's summary)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = asyncio.run(get_memory(stack.url, agent, caller))
        if reply.found and reply.memory is not None:
            return reply.memory
        assert time.monotonic() < deadline, f"agent {agent} never remembered {caller}: {reply.error}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def first_call(stack: Stack, agent_call) -> tuple[CallResult, CallerMemory]:
    result = agent_call(stack, [Say("Hi, my name is Sam, and I'd like to book a table for Tuesday.")],
                  caller=SAM, callee=RECEPTION)
    assert result.record is not None, result.record_error
    return result, remembered(stack, "reception", SAM)


def test_after_the_call_the_agent_remembers_the_caller(first_call) -> None:
    result, memory = first_call
    assert greeting(result) == RECEPTION_GREETING
    said = next(t.text for t in result.record.turns if t.speaker == "caller")
    # The name as the speech recognizer heard it ("Sam" unless Whisper tiny misheard it).
    assert memory.name and memory.name.lower() in said.lower(), (said, memory)
    assert memory.calls == 1 and memory.summary, memory
    assert any("table" in item.lower() for item in memory.of("open")), memory



def test_the_call_record_holds_the_calls_summary_and_facts(stack: Stack, first_call) -> None:
    result, memory = first_call
    deadline = time.monotonic() + 15
    while True:
        record = asyncio.run(get_call(stack.url, result.call_sid))
        if record is not None and record.summary is not None:
            break
        assert time.monotonic() < deadline, "the brain's call.summary never reached the call record"
        time.sleep(0.5)
    assert record.summary.text == memory.summary
    assert {"kind": "name", "text": memory.name} in record.summary.facts


def test_the_same_caller_is_greeted_by_name_next_time(stack: Stack, agent_call, first_call) -> None:
    first, memory = first_call
    again = agent_call(stack, [Wait(500)], caller=SAM, callee=RECEPTION)
    text = greeting(again)
    assert text.startswith(f"Hi {memory.name}, welcome back! This is Ava, an AI assistant."), text
    assert "table" in text.lower() and text.endswith("work out?"), text
    print(f"greeting latency (caller side): first call {greeting_ms(first)} ms, "
          f"remembered caller {greeting_ms(again)} ms")


def test_another_number_or_another_agent_gets_the_usual_greeting(stack: Stack, agent_call, first_call) -> None:
    stranger = agent_call(stack, [Wait(500)], caller=OTHER, callee=RECEPTION)
    elsewhere = agent_call(stack, [Wait(500)], caller=SAM, callee=SALES)
    assert greeting(stranger) == RECEPTION_GREETING
    assert greeting(elsewhere) == SALES_GREETING, "one agent's memory never reaches another agent"
