"""Which words are backchannels, noises or goodbyes."""

from __future__ import annotations

import pytest

from ringline.services.brain.phrases import has_words, is_agent_goodbye, is_backchannel, is_caller_goodbye, normalize

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("text", ["Uh-huh.", "Mm-hmm.", "Okay.", "Right.", "Yeah.", "Yeah, right.", "Okay, okay.",
                                  "I see.", "Oh.", "(coughs)", "[BLANK_AUDIO]", "", "Hmm?"])
def test_backchannels(text):
    assert is_backchannel(text)


@pytest.mark.parametrize("text", ["Stop.", "Wait, no.", "What?", "Okay, what about Spain?", "No.",
                                  "Hold on a second.", "Yeah, but I asked about Lyon."])
def test_not_backchannels(text):
    assert not is_backchannel(text)


def test_noise_tags_are_not_words_and_normalizing_ignores_punctuation_and_case():
    assert not has_words("(coughs) [BLANK_AUDIO] ...")
    assert has_words("Hi.")
    assert normalize("What is the capital of France?") == normalize("what is the capital of france")


@pytest.mark.parametrize("text", ["Bye.", "Goodbye!", "Okay, bye.", "Thanks, that's all.", "That's all, thanks, bye.",
                                  "No, that's it. Thank you.", "Thank you, that's all for today, bye.",
                                  "Have a good day.", "Thanks bye"])
def test_caller_goodbyes(text):
    assert is_caller_goodbye(text)


@pytest.mark.parametrize("text", ["How do you say goodbye in French?", "Can you say bye to my mom for me",
                                  "I want to cancel my order and say goodbye to this company",
                                  "That's all I wanted to ask about the order status", "Hello", ""])
def test_not_caller_goodbyes(text):
    assert not is_caller_goodbye(text)


def test_agent_goodbye_is_its_last_sentence():
    assert is_agent_goodbye("You're welcome. Goodbye!")
    assert is_agent_goodbye("Bye for now.")
    assert not is_agent_goodbye("Goodbye is au revoir in French. Anything else?")
    assert not is_agent_goodbye("Have a great day.")
