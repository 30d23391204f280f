"""The WER bench's scoring: numbers said in words and written in digits score the same, a misheard
word counts once, and a voice that is not installed says why instead of failing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

_spec = importlib.util.spec_from_file_location("phone_voices", Path(__file__).resolve().parent / "phone_voices.py")
assert _spec is not None and _spec.loader is not None
phone_voices = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("phone_voices", phone_voices)
_spec.loader.exec_module(phone_voices)


@pytest.mark.parametrize(
    ("said", "heard"),
    [
        ("It's five five five, two one eight, four four nine zero.", "It's 555-218-4490."),
        ("Could I come in on Friday the twenty first at three thirty?", "Could I come in on Friday the 21st at 3:30?"),
        ("Next Tuesday, the fourteenth, in the morning.", "next Tuesday the 14th in the morning"),
        ("I'd like to see doctor Okafor.", "I'd like to see Dr. Okafor."),
        ("One of us is gluten free.", "One of us is gluten-free."),
    ],
)
def test_the_same_words_written_differently_are_no_error(said: str, heard: str) -> None:
    assert phone_voices.word_errors(said, heard)[0] == 0


def test_a_misheard_word_a_dropped_word_and_an_extra_word_count_once_each() -> None:
    said = "Hi, I'd like to book a cleaning with doctor Okafor."
    assert phone_voices.word_errors(said, "Hi, I'd like to put a cleaning with Dr. Okafor.") == (1, 10)
    assert phone_voices.word_errors(said, "I'd like to book a cleaning with Dr. Okafor.") == (1, 10)
    assert phone_voices.word_errors(said, "Hi, I'd like to book a cleaning with Dr. Okafor today.") == (1, 10)
    assert phone_voices.word_errors("My order is four five seven two.", "My order is 4573.")[0] == 1


def test_a_voice_that_is_not_installed_says_why() -> None:
    missing = phone_voices.Voice("nowhere", "festival", "no_such_voice_diphone").missing()
    assert "not installed" in missing
