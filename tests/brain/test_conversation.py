"""Call history as chat messages."""

import pytest

from ringline.services.brain.conversation import Conversation

pytestmark = pytest.mark.unit


def test_messages_start_with_the_system_prompt_and_alternate():
    conv = Conversation("be brief")
    conv.add_agent("Hi, I'm an AI.")
    conv.add_caller("Hello")
    conv.add_agent("How can I help?")
    assert conv.messages() == [
        {"role": "system", "content": "be brief"},
        {"role": "assistant", "content": "Hi, I'm an AI."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "How can I help?"},
    ]


def test_consecutive_utterances_of_one_speaker_merge_and_blanks_are_dropped():
    conv = Conversation("sys")
    conv.add_caller("Wait")
    conv.add_agent("   ")
    conv.add_caller("what time is it?")
    assert conv.messages()[1:] == [{"role": "user", "content": "Wait what time is it?"}]


def test_only_recent_turns_are_sent_and_they_open_with_the_caller():
    conv = Conversation("sys", max_messages=4)
    for n in range(5):
        conv.add_caller(f"q{n}")
        conv.add_agent(f"a{n}")
    conv.add_caller("q5")
    messages = conv.messages()
    assert messages[0]["role"] == "system"
    assert [m["content"] for m in messages[1:]] == ["q4", "a4", "q5"]


def test_an_interrupted_agent_turn_is_cut_and_noted():
    conv = Conversation("sys")
    conv.add_caller("Tell me about Paris.")
    conv.add_agent_interrupted("Paris is the capital.")
    conv.add_caller("And Lyon?")
    assert [m["content"] for m in conv.messages()[1:]] == [
        "Tell me about Paris.", "Paris is the capital. — [interrupted by the caller]", "And Lyon?"]
    conv.add_agent("Lyon is in the south-east.", turn_id="t2")
    assert conv.replace_agent("t2", "")
    assert conv.messages()[-1]["content"] == "[interrupted by the caller before saying anything]"


def test_tool_exchanges_stay_whole_and_the_window_never_opens_inside_one():
    conv = Conversation("sys", max_messages=4)
    conv.add_caller("Where is order 1?")
    conv.add_tool_exchange("Let me see.", [{"id": "t1", "name": "order", "arguments": {"id": "1"}}],
                           [{"tool_call_id": "t1", "name": "order", "content": "{}", "is_error": False}])
    conv.add_agent("It shipped.")
    conv.add_caller("Thanks.")
    conv.add_caller_event("pressed 1")
    roles = [m["role"] for m in conv.messages()]
    assert roles == ["system", "user"], "the window starts at a caller message, not at a tool answer"
    assert conv.messages()[-1]["content"] == "Thanks. [caller pressed 1]"
    full = Conversation("sys")
    full.turns = list(conv.turns)
    assert [m["role"] for m in full.messages()] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert full.messages()[2]["tool_calls"][0]["id"] == "t1"
