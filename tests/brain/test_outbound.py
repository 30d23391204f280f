"""The opening of an outbound call: a person hears the agent introduce itself with the call's
purpose; an answering machine gets a short message (or the agent hangs up at once, as the agent
is configured); a fax is hung up on. Inbound calls keep their greeting."""

from __future__ import annotations

import pytest

from ringline.contracts.messages import CallStart
from ringline.services.brain.outbound import instructions, outbound_opening, purpose_phrase
from ringline.services.brain.settings import BrainSettings

pytestmark = pytest.mark.unit

PURPOSE = "confirm your dentist appointment on Tuesday at 10"


def call(answered_by: str = "human", purpose: str = PURPOSE, direction: str = "outbound") -> CallStart:
    return CallStart(call_id="CA1", agent_id="reception", direction=direction,
                     custom={"purpose": purpose, "answered_by": answered_by})


def settings(**values: object) -> BrainSettings:
    return BrainSettings(agent_name="Ava", **values)


@pytest.mark.parametrize("answered_by", ["human", "unknown", ""])
def test_a_person_hears_who_calls_and_why(answered_by: str) -> None:
    opening = outbound_opening(call(answered_by), settings())
    assert opening is not None and not opening.hang_up and opening.kind == "greeting"
    assert opening.text == ("Hi, this is Ava, an AI assistant, calling to confirm your dentist appointment on "
                            "Tuesday at 10. Do you have a moment?")


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "machine_end_silence",
                                         "machine_end_other"])
def test_a_machine_gets_a_short_message_made_from_the_purpose_then_the_call_ends(answered_by: str) -> None:
    opening = outbound_opening(call(answered_by), settings())
    assert opening is not None and opening.hang_up and opening.kind == "goodbye"
    assert opening.text.startswith("Hi, this is Ava, an AI assistant, calling to confirm your dentist appointment")
    assert opening.text.endswith("I'll try again later. Goodbye!")
    assert opening.reason == "message left on an answering machine" and opening.answered_by == answered_by


def test_the_agents_own_machine_message_is_left() -> None:
    configured = settings(outbound_machine_message="This is {agent_name} from Smile Dental about {purpose}. "
                                                   "Please call us back on 555 0100.")
    opening = outbound_opening(call("machine_end_beep"), configured)
    assert opening is not None and opening.hang_up
    assert opening.text == (f"This is Ava from Smile Dental about {PURPOSE}. Please call us back on 555 0100.")


def test_an_agent_that_hangs_up_on_machines_says_nothing() -> None:
    opening = outbound_opening(call("machine_start"), settings(outbound_machine="hangup"))
    assert opening is not None
    assert (opening.text, opening.hang_up, opening.reason) == ("", True, "an answering machine answered")


def test_a_fax_is_hung_up_on_whatever_the_configuration() -> None:
    opening = outbound_opening(call("fax"), settings(outbound_machine="leave_message"))
    assert opening is not None and (opening.text, opening.hang_up) == ("", True)


def test_an_inbound_call_keeps_its_greeting() -> None:
    assert outbound_opening(call(direction="inbound"), settings()) is None
    assert instructions(call(direction="inbound")) == ""


def test_an_outbound_call_without_a_purpose_still_introduces_the_agent() -> None:
    opening = outbound_opening(call(purpose=""), settings())
    assert opening is not None and opening.text == "Hi, this is Ava, an AI assistant. Do you have a moment?"


@pytest.mark.parametrize(("purpose", "phrase"), [
    ("Confirm Tuesday's appointment.", "to confirm Tuesday's appointment"),
    ("your order 4521", "about your order 4521"),
    ("about the invoice", "about the invoice"),
    ("to  follow up   on your application", "to follow up on your application"),
    ("SKU-42 back in stock!", "about SKU-42 back in stock"),
    ("", ""),
])
def test_the_purpose_reads_naturally_after_calling(purpose: str, phrase: str) -> None:
    assert purpose_phrase(purpose) == phrase


def test_the_model_is_told_it_placed_the_call_and_why() -> None:
    text = instructions(call())
    assert "you called this person" in text and PURPOSE in text
