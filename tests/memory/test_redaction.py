"""Redacted call records: with `redact_pii` the stored turns carry no card number, email or phone
number, with `mask_caller_numbers` the caller's number keeps only its last four digits; without
either the record is kept as it was said."""

from __future__ import annotations

import pytest

from ringline.contracts.messages import CallRecord, TurnRecord
from ringline.services.memory.store import CallStore

pytestmark = pytest.mark.unit

SAID = "my card is 4111 1111 1111 1111 and my email is ann@example.com, call 555 010 0199"


def record() -> CallRecord:
    return CallRecord(call_id="CA1", caller="+15550100001", callee="+15550100002",
                      turns=[TurnRecord(turn_id="u1", speaker="caller", text=SAID, heard_text=SAID)])


def test_redacted_records_keep_no_card_email_or_phone_number() -> None:
    kept = CallStore(kv=None, redact_pii=True).stored(record())  # type: ignore[arg-type]
    text = kept.turns[0].text + kept.turns[0].heard_text
    assert "4111" not in text and "ann@example.com" not in text and "0199" not in text
    assert "[card]" in text and "[email]" in text and "[phone]" in text
    assert kept.caller == "+15550100001"


def test_masked_records_keep_the_callers_last_four_digits() -> None:
    kept = CallStore(kv=None, mask_callers=True).stored(record())  # type: ignore[arg-type]
    assert kept.caller.endswith("0001") and "555010" not in kept.caller
    assert kept.turns[0].text == SAID


def test_by_default_the_record_is_kept_as_said() -> None:
    original = record()
    assert CallStore(kv=None).stored(original) == original  # type: ignore[arg-type]
