"""Transfer to a human at the edge: `Control(transfer, target)` moves the live call through
Twilio's REST API (`<Dial>`; `doubles.twilio` stands in for api.twilio.com), the outcome goes on
the call record as a `call.transfer` event before the call ends, and the stream closes either way."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from xml.etree import ElementTree

import pytest
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.contracts.events import CALL_TRANSFER
from ringline.contracts.messages import Control
from ringline.services.telephony.settings import TelephonySettings

from doubles.twilio import TwilioApi

pytestmark = pytest.mark.service

CALL = "CA" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "0123456789abcdef0123456789abcdef"
HUMAN = "+15550100099"


def credentialed_edge(tw, api_url: str, transfer_number: str | None = HUMAN):
    """An edge with Twilio credentials whose calls transfer to `transfer_number` (the edge's own;
    no agents file): the only number a transfer may go to."""
    settings = TelephonySettings(public_url="https://edge.example.com", twilio_account_sid=ACCOUNT,
                                 twilio_auth_token=TOKEN, twilio_api_url=api_url, twilio_api_timeout_s=2.0,
                                 transfer_number=transfer_number)
    signature = RequestValidator(TOKEN).compute_signature("wss://edge.example.com/twilio/stream", {})
    return tw.make_edge(settings), {"X-Twilio-Signature": signature}


def transfer_events(edge) -> list[dict]:
    return [e for e in edge.on(subjects.event(CALL)) if e["name"] == CALL_TRANSFER]


def recorded_before_the_end(edge) -> bool:
    """The memory service closes the record on `calls.end`: the transfer must be on it by then."""
    order = [(subject, body.get("name")) for subject, body in edge.seen]
    return order.index((subjects.event(CALL), CALL_TRANSFER)) < order.index((subjects.CALLS_END, None))


@pytest.fixture
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


def test_transfer_dials_the_number_through_twilio_then_closes(tw, twilio_api) -> None:
    edges, headers = credentialed_edge(tw, twilio_api.url)
    edge = next(edges)
    ws = tw.open_call(edge, headers)
    edge.publish(Control(call_id=CALL, action="transfer", target=HUMAN), subjects.control(CALL))
    assert tw.receive(ws) == {"close": 1000, "reason": "call transferred"}
    (request,) = twilio_api.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert base64.b64decode(request["auth"].removeprefix("Basic ")).decode() == f"{ACCOUNT}:{TOKEN}"
    twiml = ElementTree.fromstring(request["form"]["Twiml"][0])
    assert [(child.tag, child.text) for child in twiml] == [("Dial", HUMAN)]
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == f"transferred to {HUMAN}"
    (event,) = transfer_events(edge)
    assert event["data"] == {"target": HUMAN, "outcome": "transferred"}
    assert recorded_before_the_end(edge)
    ws.__exit__(None, None, None)
    edges.close()


def test_a_transfer_twilio_refuses_is_recorded_as_failed_and_the_call_ends(tw, caplog) -> None:
    with TwilioApi(status=400) as api:
        edges, headers = credentialed_edge(tw, api.url)
        edge = next(edges)
        ws = tw.open_call(edge, headers)
        with caplog.at_level(logging.WARNING, logger="ringline"):
            edge.publish(Control(call_id=CALL, action="transfer", target=HUMAN), subjects.control(CALL))
            assert tw.receive(ws) == {"close": 1000, "reason": "call transferred"}
        (end,) = edge.wait_for(subjects.CALLS_END)
        assert end["reason"] == "agent hung up (transfer not possible)"
        (event,) = transfer_events(edge)
        assert event["data"]["target"] == HUMAN
        assert event["data"]["outcome"].startswith("failed: Twilio answered 400")
        # the Dial was refused; the edge then asks Twilio to end the call, as after a hang-up
        assert [r["form"].get("Status") for r in api.requests] == [None, ["completed"]]
        assert any("did not transfer the call" in r.getMessage() for r in caplog.records)
        ws.__exit__(None, None, None)
        edges.close()


def test_without_twilio_credentials_a_transfer_ends_the_call_like_a_hangup(tw, twilio_api, caplog,
                                                                           monkeypatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    edges = tw.make_edge(TelephonySettings(public_url="https://edge.example.com", transfer_number=HUMAN))
    edge = next(edges)
    ws = tw.open_call(edge)
    with caplog.at_level(logging.WARNING, logger="ringline"):
        edge.publish(Control(call_id=CALL, action="transfer", target=HUMAN), subjects.control(CALL))
        assert tw.receive(ws) == {"close": 1000, "reason": "call transferred"}
    (event,) = edge.wait_for(subjects.event(CALL))
    assert event["name"] == CALL_TRANSFER
    assert event["data"] == {"target": HUMAN, "outcome": "no twilio credentials"}
    assert [e["reason"] for e in edge.wait_for(subjects.CALLS_END)] == ["agent hung up (transfer not possible)"]
    assert twilio_api.requests == []
    assert any("needs Twilio" in r.getMessage() for r in caplog.records)
    ws.__exit__(None, None, None)
    edges.close()


def test_a_transfer_without_a_number_fails_and_the_call_is_hung_up(tw, twilio_api) -> None:
    edges, headers = credentialed_edge(tw, twilio_api.url, transfer_number=None)
    edge = next(edges)
    ws = tw.open_call(edge, headers)
    edge.publish(Control(call_id=CALL, action="transfer"), subjects.control(CALL))
    assert tw.receive(ws)["close"] == 1000
    edge.wait_for(subjects.CALLS_END)
    (event,) = transfer_events(edge)
    assert event["data"]["outcome"] == "failed: no number to transfer to"
    assert [r["form"] for r in twilio_api.requests] == [{"Status": ["completed"]}]  # no Dial
    ws.__exit__(None, None, None)
    edges.close()
