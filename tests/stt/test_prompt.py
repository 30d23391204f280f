"""What Whisper is told before it hears the caller: the agent's keyterms and the last lines."""

from __future__ import annotations

import pytest

from ringline.services.stt.prompt import MAX_PROMPT_CHARS, CallHints, Hints, parse_keyterms, prompt_text

pytestmark = pytest.mark.unit


def test_the_prompt_carries_the_keyterms_and_the_agents_last_question() -> None:
    hints = CallHints.from_custom({"stt_keyterms": "Brightside Dental, Dr. Okafor,,refund "})
    hints.agent_said("t1", "Thanks for calling Brightside Dental.")
    hints.agent_said("t1", "What day would you like?")  # the same turn, next chunk
    text = prompt_text(hints.now())
    assert text == ("Brightside Dental, Dr. Okafor, refund. "
                    "Thanks for calling Brightside Dental. What day would you like?")
    assert text.endswith("What day would you like?")  # nearest the audio


def test_the_conversation_keeps_the_last_lines_in_order() -> None:
    hints = CallHints(keep=2)
    hints.agent_said("t1", "Hello, how can I help?")
    hints.caller_said("I'd like to book a table.")
    hints.agent_said("t2", "For how many people?")
    assert hints.now().recent == ("I'd like to book a table.", "For how many people?")
    hints.caller_said("   ")  # nothing said: nothing remembered
    assert hints.now().recent[-1] == "For how many people?"


def test_no_keyterms_and_nothing_said_is_no_prompt() -> None:
    assert CallHints.from_custom({}).now().empty
    assert prompt_text(Hints()) == ""
    assert parse_keyterms(" , ,") == ()


def test_a_long_conversation_keeps_the_keyterms_and_the_latest_words() -> None:
    old = "blah " * 200
    hints = Hints(("Northwind", "refund"), (old, "Would you prefer a refund or store credit?"))
    text = prompt_text(hints)
    assert len(text) <= MAX_PROMPT_CHARS
    assert text == "Northwind, refund. Would you prefer a refund or store credit?"
    single = prompt_text(Hints((), ("word " * 300 + "What is your order number?",)))
    assert len(single) <= MAX_PROMPT_CHARS and single.endswith("What is your order number?")
