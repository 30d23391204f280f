"""Several agents on several numbers, on the real stack: each number answers with its own agent,
and a caller outside an agent's allow-list reaches voicemail, whose transcript is stored with the
call record (and its audio in the memory service's object store).
"""

from __future__ import annotations

import pytest

from ringline.caller import CallResult, ExpectHangup, Say, Wait
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

FRONT, FAMILY = "+15550100001", "+15550100002"
AGENTS = f"""
agents:
  - id: front
    name: Ava
    numbers: ["{FRONT}"]
    greeting: "Hello, you've reached Ava at Bell's Bakery. I'm an AI assistant."
  - id: family
    name: Robin
    numbers: ["{FAMILY}"]
    greeting: "Hi, this is Robin, the Smith family's AI assistant."
    allow: ["+1555012*"]
    voicemail:
      prompt: "Robin can't take your call. Please leave a message."
      silence_s: 2.0
      goodbye: "Thanks, I'll pass it on. Goodbye!"
"""
def greeting(result: CallResult) -> str:
    record = result.record
    assert record is not None, result.record_error
    return next(t.text for t in record.turns if t.speaker == "agent")


def test_each_number_is_answered_by_its_own_agent(stack: Stack, agent_call) -> None:
    front = agent_call(stack, [Wait(500)], caller="+15550123456", callee=FRONT)
    family = agent_call(stack, [Wait(500)], caller="+15550123456", callee=FAMILY)
    assert front.record is not None and family.record is not None
    assert (front.record.agent_id, family.record.agent_id) == ("front", "family")
    assert greeting(front) == "Hello, you've reached Ava at Bell's Bakery. I'm an AI assistant."
    assert greeting(family) == "Hi, this is Robin, the Smith family's AI assistant."


def test_a_caller_outside_the_allow_list_leaves_a_voicemail(stack: Stack, agent_call) -> None:
    result = agent_call(stack, [Say("Hi Robin, this is the dentist. Please call me back tomorrow."),
                                 ExpectHangup(timeout_s=20)], caller="+15559990000", callee=FAMILY)
    record = result.record
    assert record is not None, result.record_error
    assert greeting(result) == "Robin can't take your call. Please leave a message."
    assert record.voicemail is not None, record.events
    assert record.voicemail.reason == "caller not on the allow-list"
    text = record.voicemail.text.lower()
    assert "dentist" in text and "call me back" in text, record.voicemail
    assert record.voicemail.audio_s > 2.0, "the caller's audio is kept with the message"
    agent_lines = [t.text for t in record.turns if t.speaker == "agent"]
    assert agent_lines[-1] == "Thanks, I'll pass it on. Goodbye!" and result.ended_by == "agent"
