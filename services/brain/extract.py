"""Cheap, deterministic reading of what a caller said (pure): their name, what they want, dates,
times and numbers, and whether they asked something.

The local 0.5B model cannot be trusted to spell a caller's name back, so these rules back it up:
a name is taken only from an introduction ("my name is Sam", "this is Sam", "I'm Sam", "Sam
here", "call me Sam"), and only a word that looks like a name (capitalized by the speech
recognizer, not a day, a month or a common word). Everything here works on the text alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WORD = r"[A-Za-z][A-Za-z'-]{0,24}"
_CAP = r"[A-Z][a-z'-]{1,24}"
_STRONG = re.compile(rf"\b(?:my name is|my name's|the name is|the name's)\s+({_WORD})(?:\s+({_CAP}))?",
                     re.IGNORECASE)
_INTRO = re.compile(rf"\b(?i:this is|I'm|I am|it's|call me)\s+({_CAP})(?:\s+({_CAP}))?")
_HERE = re.compile(rf"(?:^|[.!?,]\s*)({_CAP})\s+(?:here|speaking)\b")

NOT_NAMES = frozenset("""
monday tuesday wednesday thursday friday saturday sunday january february march april may june july
august september october november december today tomorrow tonight yes no yeah okay ok hi hello hey
sorry fine good great well just not calling looking here there sure glad happy interested afraid
new back busy ready done trying going the a an it that this what who how why when where mister mrs
miss doctor sir madam english spanish french german american british canadian ringline google
interested available able unable sick calling wondering hoping also still actually really only
in on at for to from of by with about and or but so if as is was be not now later back
""".split())

_WANT = re.compile(
    r"\b(?:i'd like to|i would like to|i want to|i wanna|i need to|i'm calling to|i am calling to|"
    r"i'm looking to|i'd love to|i'm hoping to|i was hoping to|i'd like|i would like|i want|i need)"
    r"\s+(?P<what>[^.?!;]+)", re.IGNORECASE)
_WANT_STOP = re.compile(r"\s*(?:,|\bplease\b|\bthanks?\b|\bthank you\b|\bbut\b|\bbecause\b|\bso\b\s).*$",
                        re.IGNORECASE)
_VAGUE = re.compile(r"^(?:know|ask|talk|speak|say|check|hear|find out|understand|be|go|it|that|this|you|"
                    r"some help|help|to)\b", re.IGNORECASE)

_DAYS = r"(?:mon|tues|wednes|thurs|fri|satur|sun)day"
_MONTHS = r"(?:january|february|march|april|may|june|july|august|september|october|november|december)"
_DATE = re.compile(
    rf"\b(?:(?:next|this|last)\s+)?{_DAYS}(?:\s+(?:morning|afternoon|evening|night))?\b"
    rf"|\b{_MONTHS}\s+\d{{1,2}}(?:st|nd|rd|th)?\b|\b\d{{1,2}}(?:st|nd|rd|th)?\s+of\s+{_MONTHS}\b"
    r"|\b(?:today|tomorrow|tonight|this weekend|next week|next month)\b", re.IGNORECASE)
_TIME = re.compile(r"\b\d{1,2}(?::\d{2})?\s*(?:a\.?m\.?|p\.?m\.?)|\b\d{1,2}:\d{2}\b|\b(?:noon|midnight)\b"
                   r"|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s+(?:o'clock|"
                   r"in the (?:morning|afternoon|evening)|thirty|fifteen|forty-five)\b", re.IGNORECASE)
_NUMBER = re.compile(r"\b(?:([a-z]+)\s+)?(?:number\s+)?(\d[\d -]{0,18}\d|\d)\b", re.IGNORECASE)
_NUMBER_WORDS = frozenset("order account booking reservation ticket invoice room table case reference "
                          "confirmation policy flight phone".split())
_QUESTION_START = re.compile(
    r"^(?:what|what's|when|where|who|why|how|which|can|could|would|will|do|does|did|is|are|was|were|"
    r"should|shall|may|have|has)\b", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_PRONOUNS = {"my": "your", "me": "you", "i": "you", "i'm": "you're", "our": "your", "us": "you", "mine": "yours",
             "myself": "yourself"}


def _name(first: str) -> str:
    return first[:1].upper() + first[1:].lower() if first.islower() else first


def caller_name(text: str, not_names: set[str] | frozenset[str] = frozenset()) -> str:
    """The first name a caller gives when introducing themselves, or ""."""
    banned = NOT_NAMES | {n.lower() for n in not_names}
    for match in _STRONG.finditer(text):
        if match.group(1).lower() not in banned:
            return _name(match.group(1))
    for pattern in (_INTRO, _HERE):
        for match in pattern.finditer(text):
            if match.group(1).lower() not in banned:
                return match.group(1)
    return ""


def wants(text: str, max_words: int = 8) -> list[str]:
    """What the caller says they want to do or get: "I'd like to book a table for Tuesday,
    please" -> ["book a table for Tuesday"]."""
    found: list[str] = []
    for match in _WANT.finditer(text):
        what = _WANT_STOP.sub("", match.group("what")).strip(" ,")
        words = what.split()
        if not words or _VAGUE.match(what) or len(words) < 2:
            continue
        found.append(" ".join(words[:max_words]))
    return found


def dates(text: str) -> list[str]:
    return _unique(m.group(0).strip() for m in [*_DATE.finditer(text), *_TIME.finditer(text)])


def numbers(text: str) -> list[str]:
    """Numbers worth keeping, with the word that says what they are: "order 4471", "4 people"."""
    found = []
    for match in _NUMBER.finditer(text):
        label, digits = (match.group(1) or "").lower(), match.group(2).strip()
        after = text[match.end():].lstrip().split(" ", 1)[0].strip(".,!?").lower()
        if _TIME.match(text[match.start(2):]) or (not label and len(digits) <= 2 and after in ("", "o'clock")):
            continue
        if label in _NUMBER_WORDS:
            found.append(f"{label} {digits}")
        elif after and after.isalpha() and len(digits) <= 3:
            found.append(f"{digits} {after}")
        elif len(digits.replace(" ", "").replace("-", "")) >= 3:
            found.append(digits)
    return _unique(found)


def is_question(text: str) -> bool:
    text = text.strip()
    return text.endswith("?") or bool(_QUESTION_START.match(text))


def questions(text: str) -> list[str]:
    return [s.strip() for s in sentences(text) if is_question(s)]


def sentences(text: str) -> list[str]:
    return [s for s in _SENTENCE.split(text.strip()) if s]


def key_sentence(text: str, max_chars: int = 120) -> str:
    """The first sentence that says something (a question, or four words or more), cut like
    `first_sentence`: "Okay, thanks. Could you tell me about parking?" -> the question."""
    for sentence in sentences(text):
        if is_question(sentence) or len(sentence.split()) >= 4:
            return first_sentence(sentence, max_chars)
    return first_sentence(text, max_chars)


def first_sentence(text: str, max_chars: int = 120) -> str:
    """The opening sentence, cut at a word boundary to `max_chars`."""
    parts = sentences(text)
    first = parts[0] if parts else text.strip()
    if len(first) <= max_chars:
        return first
    return first[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def second_person(text: str) -> str:
    """The caller's words as the agent would say them back: "my order" -> "your order"."""
    return " ".join(_PRONOUNS.get(word.lower(), word) for word in text.split())


def mentioned_in(claim: str, said: str, share: float = 0.5) -> bool:
    """Most of the content words of `claim` occur in `said`: a model's note is grounded in the call."""
    content = [w for w in re.findall(r"[a-z0-9']+", claim.lower()) if len(w) > 2 and w not in _FILLER]
    if not content:
        return False
    heard = set(re.findall(r"[a-z0-9']+", said.lower()))
    return sum(w in heard for w in content) >= max(1, round(len(content) * share))


_FILLER = frozenset("the and for with about your you his her their them they this that from into was were "
                    "are has have had will would could should can caller agent call wants wanted asked".split())


def _unique(items: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        key = item.lower()
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
