"""End of turn with the learned model's verdict on the voice, the words as second opinion."""

from __future__ import annotations

import pytest

from ringline.contracts.agent_options import TurnTaking
from ringline.services.stt.endofturn import COMPLETE, INCOMPLETE, UNKNOWN, TurnConfig, end_reason
from ringline.services.stt.settings import call_configs
from ringline.services.stt.vad import EndpointerConfig

pytestmark = pytest.mark.unit

TURN = TurnConfig(complete_silence_ms=350, end_silence_ms=600, backstop_silence_ms=1500, model_silence_ms=200)


def first_end(verdict, pending, model, model_pending=False, config=TURN):
    """The first 20 ms step of silence at which the turn ends, and why."""
    for silence in range(20, 3001, 20):
        reason = end_reason(silence, verdict, pending, config, model, model_pending)
        if reason:
            return silence, reason
    return None


def test_the_model_saying_complete_ends_the_turn_after_a_short_silence():
    assert first_end(COMPLETE, False, COMPLETE) == (200, "model")
    assert first_end(UNKNOWN, False, COMPLETE) == (200, "model")
    assert first_end(None, False, COMPLETE) == (200, "model")  # no early decode at all


def test_the_words_still_being_decoded_are_waited_for_and_may_veto():
    assert end_reason(400, None, True, TURN, COMPLETE) is None  # the final text waits for them anyway
    assert first_end(INCOMPLETE, False, COMPLETE) == (1500, "backstop")  # "... a table for" trails off


def test_the_model_saying_incomplete_holds_past_a_one_second_pause():
    assert first_end(COMPLETE, False, INCOMPLETE) == (1500, "backstop")
    assert first_end(None, False, None, model_pending=True) == (1500, "backstop")


def test_without_a_model_verdict_the_text_rules_decide_as_before():
    assert first_end(COMPLETE, False, None) == (360, "complete")
    assert first_end(UNKNOWN, False, None) == (600, "silence")
    assert first_end(INCOMPLETE, False, None) == (1500, "backstop")


def test_an_agent_sets_the_model_per_call():
    options = TurnTaking(turn_model=False, turn_model_threshold=0.8, turn_model_silence_ms=300).stt_options()
    _config, turn = call_configs(EndpointerConfig(), TURN, options)  # what the edge puts on CallStart.custom
    assert turn.model is False and turn.model_threshold == 0.8 and turn.model_silence_ms == 300
    _, on = call_configs(EndpointerConfig(), TurnConfig(model=False), TurnTaking(turn_model=True).stt_options())
    assert on.model is True
    _, kept = call_configs(EndpointerConfig(), TURN, {"stt_turn_model": "maybe", "stt_turn_model_threshold": "x"})
    assert kept == TURN
    assert TURN.model_verdict(0.49) == INCOMPLETE and TURN.model_verdict(0.5) == COMPLETE
