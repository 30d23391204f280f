"""The sentence chunker: what TTS gets to say, and how early."""

from __future__ import annotations

import pytest

from ringline.services.brain.chunker import SentenceChunker, clean

pytestmark = pytest.mark.unit


def chunks_of(text: str, step: int = 1, first_clause_words: int = 1) -> list[str]:
    """Feed `text` in pieces of `step` characters, as a token stream would arrive."""
    chunker = SentenceChunker(first_clause_words)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.push(text[i : i + step])
    return out + chunker.flush()


@pytest.mark.parametrize("step", [1, 3, 7, 1000])
def test_cuts_at_sentence_ends_whatever_the_token_size(step):
    text = "Paris is the capital. It is lovely in spring! Have you been there? I hope so."
    assert chunks_of(text, step) == [
        "Paris is the capital.", "It is lovely in spring!", "Have you been there?", "I hope so.",
    ]


def test_first_chunk_cuts_at_its_first_clause():
    text = "The capital of France, as you may know, is Paris, a lovely city."
    assert chunks_of(text) == ["The capital of France,", "as you may know, is Paris, a lovely city."]


def test_an_opening_word_goes_to_tts_alone_while_the_rest_is_written():
    chunker = SentenceChunker()
    assert chunker.push("Sure,") == [] and chunker.push(" I") == ["Sure,"]  # out before "I can help" exists
    assert chunks_of("Sure, I can help with that. Thanks, bye.") == ["Sure,", "I can help with that.",
                                                                   "Thanks, bye."]
    assert chunks_of("It costs 1,200 dollars.") == ["It costs 1,200 dollars."]  # a number's comma is no clause


def test_the_old_rule_keeps_a_short_opening_clause_with_its_sentence():
    text = "Sure, I can help with that. Thanks, bye."
    assert chunks_of(text, first_clause_words=4) == ["Sure, I can help with that.", "Thanks, bye."]
    four = chunks_of("The capital of France, as you know, is Paris.", first_clause_words=4)
    assert four[0] == "The capital of France,"


def test_short_first_sentence_is_its_own_chunk():
    assert chunks_of("Yes. The store opens at nine.") == ["Yes.", "The store opens at nine."]


def test_chunk_is_emitted_as_soon_as_its_boundary_is_certain():
    chunker = SentenceChunker()
    assert chunker.push("Paris is the capital.") == []  # "3." could still become "3.5"
    assert chunker.push(" It") == ["Paris is the capital."]
    assert chunker.push(" is nice.") == []
    assert chunker.flush() == ["It is nice."]


@pytest.mark.parametrize(
    "text",
    [
        "It costs 3.5 dollars today.",
        "Bring something sweet, e.g. cake or fruit.",
        "Ask Mr. Smith and Dr. Jones tomorrow.",
        "We open at 9 a.m. on weekdays.",
        "J. R. Tolkien wrote it.",
        "That is 1,000 people exactly.",
    ],
)
def test_numbers_and_abbreviations_do_not_end_a_chunk(text):
    assert chunks_of(text, first_clause_words=20) == [text]  # no comma rule: only a sentence end cuts


def test_a_number_can_end_a_sentence():
    assert chunks_of("I counted 3. Then I stopped.") == ["I counted 3.", "Then I stopped."]


def test_markdown_emphasis_code_and_headings_are_stripped():
    text = "## Answer\n**Great question!** The answer is *yes*, use `pip` 😀 🎉"
    assert chunks_of(text) == ["Answer", "Great question!", "The answer is yes, use pip"]


def test_list_bullets_and_numbers_become_plain_lines():
    text = "Here are three:\n1. Apple\n2. Banana\n- Cherry"
    assert chunks_of(text) == ["Here are three:", "Apple", "Banana", "Cherry"]


def test_closing_quotes_stay_with_their_sentence():
    assert chunks_of('He said "stop." Then he left.') == ['He said "stop."', "Then he left."]


def test_flush_returns_an_unfinished_last_sentence():
    assert chunks_of("Paris is nice. And the") == ["Paris is nice.", "And the"]


def test_nothing_speakable_gives_no_chunks():
    assert chunks_of("... ** 😀 \n\n") == []


def test_long_later_chunks_are_cut_at_a_clause():
    text = ("Yes. " + " ".join(["word"] * 20) + ", and then more words follow here.")
    out = chunks_of(text)
    assert out[0] == "Yes." and out[1].endswith(",") and len(out) == 3


def test_clean_collapses_whitespace_and_leading_punctuation():
    assert clean("  ,  hello \n  world  ") == "hello world"


def test_history_notes_copied_by_the_model_are_never_spoken():
    from ringline.services.brain.chunker import clean

    assert clean("[interrupted by the caller before saying anything]") == ""
    assert clean("Sure — [interrupted by the caller] we open at nine.") == "Sure — we open at nine."
