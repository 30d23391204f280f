"""The semantic end-of-turn check: does the text so far read like the caller has finished?

The texts are what Whisper tiny.en writes for real (Piper) speech, punctuation included.
"""

from __future__ import annotations

import pytest

from ringline.services.stt.endofturn import TurnConfig, end_reason, text_verdict

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "What time does the pharmacy close on Saturday?",
        "Please transfer me to someone in billing.",
        "Yes.",
        "No, thank you. That is all.",
        "My order number is 4572.",
        "Who is it for?",  # a wh-question may end on a preposition
        "Where are you calling from?",
        "Can I?",  # ...and a question on its subject
        "I think so.",
        "Mm-hmm.",
        "Thanks a lot. Goodbye!",
        "Please call me.",  # "me" ends a request whose verb needs nothing more
        "Tell me the time, please.",
        '"Hello."',
    ],
)
def test_complete_sentences(text):
    assert text_verdict(text) == "complete"


@pytest.mark.parametrize(
    "text",
    [
        "I'd like to book a table for.",  # Whisper puts a full stop after the trailing preposition
        "I'd like to book a table for",
        "I'd like to book a table for the...",
        "I need to change my...",
        "My order number is...",
        "I was calling because...",
        "I want to, um...",
        "I want to um.",
        "Bread, milk, and",
        "Bread, milk and.",
        "It was good but.",
        "So.",
        "Hmm.",
        "I'd like to book a table,",
        "Well, let me think.",
        "Can I get a table for?",  # not a wh-question: Whisper guessing a question mark
        "Tomorrow I'm",
        "Yesterday we.",
        "The order was sent to — ",
        "Could you tell me?",  # ... how long the drive takes: what is asked for is still to come
        "Can you remind me.",
        "Could you give us",
    ],
)
def test_unfinished_sentences(text):
    assert text_verdict(text) == "incomplete"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "...",
        "Hello there",  # no final punctuation: Whisper is not sure either
        "Please hold on.",  # "on" may end it ("Hold on.") or not ("a table for two on...")
        "My name is.",
        "Yes, I can.",
    ],
)
def test_text_that_cannot_tell(text):
    assert text_verdict(text) == "unknown"


CONFIG = TurnConfig(complete_silence_ms=350, end_silence_ms=600, backstop_silence_ms=1500)


@pytest.mark.parametrize(
    ("silence_ms", "verdict", "pending", "expected"),
    [
        (0, "complete", False, None),
        (340, "complete", False, None),
        (360, "complete", False, "complete"),  # a finished sentence: a short wait
        (900, "complete", False, "complete"),  # (the text came late: it still says complete)
        (360, "unknown", False, None),
        (600, "unknown", False, "silence"),  # cannot tell: the plain threshold
        (600, None, False, "silence"),  # no early text at all (early decode off)
        (600, None, True, None),  # the early text is on its way: wait for it
        (1400, "incomplete", False, None),  # trails off: wait for more speech...
        (1500, "incomplete", False, "backstop"),  # ...but not for ever
        (1500, None, True, "backstop"),  # the early decode never came back
    ],
)
def test_end_reason(silence_ms, verdict, pending, expected):
    assert end_reason(silence_ms, verdict, pending, CONFIG) == expected
