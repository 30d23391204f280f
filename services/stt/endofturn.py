"""End of turn: has the caller finished, judged from the silence so far and the words so far.

Silence alone is a poor judge: a caller who pauses after "I'd like to book a table for..." is
thinking, one who pauses after "What time do you close?" is waiting. Once the caller has been
silent for a moment the utterance is decoded early (see `session`), and `text_verdict` reads that
text:

- `complete`   ends with . ? ! after a word that can end a sentence: the turn ends after only
               `complete_silence_ms` of silence;
- `incomplete` trails off: a conjunction, article, preposition, filler, "...", a trailing comma,
               "let me think": the turn waits for more speech, up to `backstop_silence_ms`;
- `unknown`    anything else (no text, no final punctuation, a word like "on" or "is" that may
               or may not end the sentence): the plain silence threshold `end_silence_ms` decides.

Pure: no I/O, no models. Whisper writes the punctuation, so "complete" means Whisper heard a
finished sentence; fillers ("um") it mostly leaves out, but the trailing words it keeps.

With the learned end-of-turn model (`smart_turn`) its verdict on the caller's voice leads and the
text is the second opinion: the model says complete -> the turn ends after `model_silence_ms`, once
the early text (if one is being decoded; the final transcript waits for it anyway) does not trail
off; the model says incomplete -> the turn waits up to the backstop (Whisper punctuates a half
sentence followed by a pause as a finished one, so the text does not overrule the voice there).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Verdict = Literal["complete", "incomplete", "unknown"]

COMPLETE: Verdict = "complete"
INCOMPLETE: Verdict = "incomplete"
UNKNOWN: Verdict = "unknown"

# Words after which an English sentence (practically) never ends, even a question.
_NEVER_LAST = frozenset({
    # articles and possessive determiners
    "a", "an", "the", "my", "your", "our", "their", "its", "every",
    # conjunctions
    "and", "but", "or", "nor", "because", "cause", "if", "than", "unless", "whereas", "whether",
    "although", "plus", "so",
    # fillers
    "um", "uh", "uhm", "umm", "uhh", "er", "erm", "hmm", "mm", "ah", "eh",
})
# Prepositions end a wh-question ("Who is it for?") but hardly ever anything else.
_PREPOSITIONS = frozenset({
    "to", "for", "of", "with", "from", "at", "into", "onto", "about", "via", "per", "between",
    "towards", "toward", "during", "including", "like",
})
# Subjects end a question ("Can I?") but not a statement.
_SUBJECTS = frozenset({
    "i", "we", "they", "he", "she",
    "i'm", "i'd", "i'll", "i've", "it's", "that's", "there's", "we're", "we'll", "we've",
    "you're", "they're", "he's", "she's", "what's", "let's",
})
# Words that may or may not end a sentence ("Hold on." / "a table for two on..."; "Yes, I can." /
# "My name is..."): the plain silence threshold decides.
_MAYBE_LAST = frozenset({
    "in", "on", "up", "out", "off", "over", "by", "around", "down", "back", "through", "after",
    "before", "is", "are", "was", "were", "am", "be", "been", "have", "has", "had", "do", "does",
    "did", "will", "would", "can", "could", "should", "may", "might", "must", "not",
})
_WH = frozenset({"what", "who", "whom", "whose", "which", "where", "when", "why", "how", "what's", "who's"})
# Two-word endings that are complete although their last word is on the lists above.
_COMPLETE_ENDINGS = frozenset({
    "think so", "hope so", "guess so", "believe so", "suppose so", "said so", "not so", "do so",
    "so so", "even so", "if so",
})
# Endings that announce more to come.
_HOLDING_PHRASES = ("let me think", "let me see", "let's see", "let me check", "i mean", "you know what")
# Verbs that take a second object: "Could you tell me" / "Can you give us" waits for what
# (Whisper writes "Could you tell me?" after a pause, and the end-of-turn model hears a finished
# question: both said complete on the turn bench's 1 s pause).
_ASKING_FOR = frozenset({"tell", "remind", "show", "give", "send", "bring", "get", "find", "let"})

_WORD = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")
_TRAILING_OFF = ("...", "…", ",", "-", "–", "—", ":", ";")
_FINAL = (".", "?", "!")


def text_verdict(text: str) -> Verdict:
    """Does this (early) transcript read like the end of the caller's turn?"""
    stripped = text.strip().lower().rstrip("\"')]” ")
    words = _WORD.findall(stripped.replace("’", "'"))
    if not words:
        return UNKNOWN
    if stripped.endswith(_TRAILING_OFF):
        return INCOMPLETE
    last = words[-1]
    ending = " ".join(words[-2:])
    question = stripped.endswith("?")
    # "Who is it for?" ends on a preposition; "Can I get a table for?" is Whisper guessing.
    wh_question = question and not _WH.isdisjoint(words)
    if ending not in _COMPLETE_ENDINGS and (
        last in _NEVER_LAST
        or (last in _PREPOSITIONS and not wh_question)
        or (last in _SUBJECTS and not question)
    ):
        return INCOMPLETE
    if " ".join(words).endswith(_HOLDING_PHRASES):
        return INCOMPLETE
    if len(words) >= 2 and last in ("me", "us") and words[-2] in _ASKING_FOR:
        return INCOMPLETE
    if last in _MAYBE_LAST and ending not in _COMPLETE_ENDINGS:
        return UNKNOWN
    return COMPLETE if stripped.endswith(_FINAL) else UNKNOWN


@dataclass(frozen=True)
class TurnConfig:
    complete_silence_ms: int = 350
    """Silence that ends a turn whose text is a complete sentence."""
    end_silence_ms: int = 600
    """Silence that ends a turn when the text cannot tell (or there is no early text)."""
    backstop_silence_ms: int = 1500
    """Silence that ends a turn whose text trails off: the caller did not go on after all."""
    model: bool = False
    """Ask the end-of-turn model (when it is loaded)."""
    model_threshold: float = 0.5
    """The model's probability from which a turn counts as complete."""
    model_silence_ms: int = 200
    """Silence that ends a turn the model calls complete."""

    def model_verdict(self, probability: float) -> Verdict:
        return COMPLETE if probability >= self.model_threshold else INCOMPLETE


def end_reason(
    silence_ms: float, verdict: Verdict | None, pending: bool, config: TurnConfig,
    model: Verdict | None = None, model_pending: bool = False,
) -> str | None:
    """Why the turn ends now, or None to keep listening.

    `verdict` is that of the text of everything said so far (None: no such text yet);
    `pending` says a decode of everything said so far is running, so a verdict is coming.
    `model`/`model_pending`: the same for the end-of-turn model's verdict on the voice.
    """
    if silence_ms <= 0:
        return None
    if model is not None or model_pending:
        if silence_ms >= config.backstop_silence_ms:
            return "backstop"
        if model_pending:
            return None
        if model == COMPLETE and verdict != INCOMPLETE:
            return "model" if silence_ms >= config.model_silence_ms and not pending else None
        if model == INCOMPLETE:
            return None  # the voice goes on: the words (often punctuated as if done) do not overrule it
    if silence_ms >= config.backstop_silence_ms:
        return "backstop" if verdict == INCOMPLETE or pending else "silence"
    if verdict is None:
        # A verdict is on its way: the final text cannot leave before it anyway.
        return None if pending or silence_ms < config.end_silence_ms else "silence"
    if verdict == COMPLETE:
        return "complete" if silence_ms >= config.complete_silence_ms else None
    if verdict == UNKNOWN:
        return "silence" if silence_ms >= config.end_silence_ms else None
    return None  # incomplete: hold until the backstop
