"""The rules behind memory across calls, on their own: who the caller says they are, what they
want, how the greeting follows up on it, and which words ask to be forgotten."""

from __future__ import annotations

import pytest

from ringline.services.brain.extract import caller_name, wants
from ringline.services.brain.phrases import is_forget_request
from ringline.services.brain.recall import follow_up

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("said", "name"), [
    ("Hi, my name is Sam. I'd like to book a table.", "Sam"), ("my name is sam", "Sam"),
    ("This is Maria, calling about my order.", "Maria"), ("Hi, I'm Sam Jones.", "Sam"), ("Sam here.", "Sam"),
    ("I'm fine, thanks.", ""), ("This is great.", ""), ("It's Tuesday.", ""), ("This is Ringline?", ""),
    ("Please call me in the morning.", ""), ("I'm Calling about a table.", ""),
])
def test_the_callers_name_comes_only_from_an_introduction(said: str, name: str) -> None:
    assert caller_name(said, {"Ringline"}) == name


@pytest.mark.parametrize(("said", "want"), [
    ("Hi, I'd like to book a table for Tuesday, please.", ["book a table for Tuesday"]),
    ("I need a haircut on Monday morning.", ["a haircut on Monday morning"]),
    ("I want to know the capital of France.", []), ("What time do you open?", []),
])
def test_what_the_caller_wants(said: str, want: list[str]) -> None:
    assert wants(said) == want


@pytest.mark.parametrize(("item", "question"), [
    ("book a table for Tuesday", "Did the table for Tuesday work out?"),
    ("table for Tuesday at seven", "Did the table for Tuesday at seven work out?"),
    ("order my birthday cake", "Did your birthday cake work out?"),
    ("a haircut on Monday morning", "Did the haircut on Monday morning work out?"),
    ("cancel my subscription", "Last time you wanted to cancel your subscription. Did that get sorted?"),
])
def test_the_greeting_asks_about_what_was_open(item: str, question: str) -> None:
    assert follow_up(item) == question


@pytest.mark.parametrize("said", [
    "Forget me.", "Please forget me.", "Delete what you know about me.", "Forget everything about me, please.",
    "Can you forget everything you know about me?", "Could you delete my data?", "Stop remembering me.",
    "Don't remember me.", "Please delete everything you have on me.", "Delete me from your memory.",
])
def test_requests_to_be_forgotten(said: str) -> None:
    assert is_forget_request(said)


@pytest.mark.parametrize("said", [
    "Don't forget me.", "Please don't forget me!", "Did you forget me?", "Will you forget me?",
    "I forgot my password.", "Do you remember me?", "How do I delete my account?", "Forget it, never mind.",
    "Delete the booking for Tuesday.", "Remove me from the waiting list.", "Delete everything in my cart.",
])
def test_not_requests_to_be_forgotten(said: str) -> None:
    assert not is_forget_request(said)
