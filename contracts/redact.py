"""Redaction of personal data in what Ringline keeps: card numbers, email addresses and phone
numbers in text, and a caller's number down to its last digits. Pure functions, no I/O.

Card numbers are recognised by their Luhn check digit (13-19 digits, spaces or dashes allowed),
so order numbers and amounts are left alone; phone numbers are 7-15 digits with the usual
separators, optionally after `+`.
"""

from __future__ import annotations

import re

CARD = "[card]"
EMAIL = "[email]"
PHONE = "[phone]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_CARD = re.compile(r"(?<![\d])(?:\d[ -]?){12,18}\d(?![\d])")
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]{0,2}\d){6,14}(?![\d])")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return CARD if 13 <= len(digits) <= 19 and luhn_ok(digits) else match.group()


def redact_text(text: str) -> str:
    """`text` with card numbers, email addresses and phone numbers replaced by placeholders."""
    text = _EMAIL.sub(EMAIL, text)
    text = _CARD.sub(_card, text)
    return _PHONE.sub(PHONE, text)


def mask_number(number: str, keep: int = 4) -> str:
    """A phone number with all but its last `keep` digits hidden: `+15550100001` -> `+•••••••0001`."""
    digits = [i for i, ch in enumerate(number) if ch.isdigit()]
    hide = set(digits[:-keep] if keep else digits)
    return "".join("•" if i in hide else ch for i, ch in enumerate(number))
