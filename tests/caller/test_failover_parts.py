"""The simulated caller's side of failover: reading the action's answer, and the gap it reports."""

from __future__ import annotations

import pytest

from ringline.caller import twilio_sim
from ringline.caller.failover import ActionFollower, Reconnect

pytestmark = pytest.mark.unit

CONNECT = ('<?xml version="1.0" encoding="UTF-8"?><Response><Connect action="https://edge.example.com/twilio/action'
           '?call=CA1&amp;agent=a"><Stream url="wss://edge.example.com/twilio/stream"><Parameter name="takeover" '
           'value="1"/></Stream></Connect></Response>')


def test_the_action_answer_is_a_new_stream_or_the_end_of_the_call() -> None:
    target = twilio_sim.read_action_twiml(CONNECT)
    assert target is not None
    assert target.url == "wss://edge.example.com/twilio/stream"
    assert target.action == "https://edge.example.com/twilio/action?call=CA1&agent=a"
    assert target.parameters == {"takeover": "1"}
    assert twilio_sim.read_action_twiml("<Response><Hangup/></Response>") is None
    assert twilio_sim.read_action_twiml("<Response/>") is None  # no verb left: Twilio hangs up
    with pytest.raises(twilio_sim.TwimlError):
        twilio_sim.read_action_twiml("not xml")


def test_the_action_is_posted_to_the_edge_dialled_and_signed_as_twilio_signs_it() -> None:
    follower = ActionFollower("http://127.0.0.1:8080/", {"CallSid": "CA1"}, "AC1", public_url="https://edge.example.com")
    assert follower._local("https://edge.example.com/twilio/action?call=CA1") == "http://127.0.0.1:8080/twilio/action?call=CA1"
    assert follower._local("/twilio/action?call=CA1") == "http://127.0.0.1:8080/twilio/action?call=CA1"
    assert follower._signed("/twilio/action?call=CA1") == "https://edge.example.com/twilio/action?call=CA1"


async def test_without_an_action_url_a_dropped_stream_ends_the_call() -> None:
    drop = Reconnect(dropped_at=1.0)
    assert await ActionFollower("http://127.0.0.1:1", {"CallSid": "CA1"}, "AC1").follow(drop) is None
    assert drop.attempts == 0


def test_the_gap_is_heard_silence_from_the_last_agent_audio_to_the_first_after() -> None:
    drop = Reconnect(dropped_at=10.0, last_agent_audio_at=9.5, reconnected_at=10.2, first_agent_audio_at=10.4)
    assert (drop.reconnect_ms, drop.gap_ms) == (200.0, 900.0)
    quiet = Reconnect(dropped_at=10.0, reconnected_at=10.1, first_agent_audio_at=12.0)  # nothing played before
    assert quiet.gap_ms == 2000.0
    assert Reconnect(dropped_at=10.0).gap_ms is None
