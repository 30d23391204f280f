"""`ringline bench`'s summary: what an operator reads off a latency run."""

from __future__ import annotations

import pytest

from ringline.caller.results import CallResult, TurnResult
from ringline.demo import ratio_line, summarize

pytestmark = pytest.mark.unit


def call(*m2e: float) -> CallResult:
    return CallResult(call_sid="CA1", turns=[TurnResult(speaker="agent", mouth_to_ear_ms=ms) for ms in m2e])


def test_a_reply_that_began_before_the_caller_finished_is_counted_apart_not_as_a_fast_answer() -> None:
    text = summarize([call(1800.0, -2300.0, 2000.0)])
    row = next(line for line in text.splitlines() if line.startswith("mouth-to-ear"))
    assert row.split()[-4:] == ["1900", "1990", "1900", "2"]  # p50, p95, mean, n of the two real answers
    assert "1 reply began before the caller had finished" in text


def test_the_ratio_compares_real_answers_only() -> None:
    old, new = [call(2000.0, -2400.0)], [call(1500.0, -2200.0)]
    assert ratio_line(old, new) == "mouth-to-ear new/old: p50 0.75, p95 0.75"
