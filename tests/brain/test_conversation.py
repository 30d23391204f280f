"""Call history as chat messages."""

from ringline.services.brain.conversation import Conversation


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
