"""What redaction leaves of personal data in a transcript, and what it leaves alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ringline.contracts.redact import CARD, EMAIL, PHONE, luhn_ok, mask_number, redact_text

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("said", "kept"), [
    ("my card is 4111 1111 1111 1111 thanks", f"my card is {CARD} thanks"),
    ("it's 5500-0000-0000-0004", f"it's {CARD}"),
    ("mail me at jane.doe+x@example.co.uk please", f"mail me at {EMAIL} please"),
    ("call me back on +1 (555) 010-0001", f"call me back on {PHONE}"),
    ("my number is 555 0100", f"my number is {PHONE}"),
])
def test_personal_data_is_replaced(said: str, kept: str) -> None:
    assert redact_text(said) == kept


@pytest.mark.parametrize("said", [
    "I'd like two tickets for Tuesday at 3",
    "order 12345 costs 49.99",
    "the year 2024 and room 1204",
])
def test_ordinary_words_and_short_numbers_stay(said: str) -> None:
    assert redact_text(said) == said


def test_a_sixteen_digit_number_that_is_not_a_card_is_a_number_not_a_card() -> None:
    assert not luhn_ok("4111111111111112")
    assert CARD not in redact_text("reference 4111 1111 1111 1112")


def test_a_callers_number_keeps_its_last_four_digits() -> None:
    assert mask_number("+15550100001") == "+•••••••0001"
    assert mask_number("") == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_redaction_never_grows_a_secret_back_and_is_idempotent(text: str) -> None:
    once = redact_text(text)
    assert redact_text(once) == once
