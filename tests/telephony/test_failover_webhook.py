"""The edge's part of failover as Twilio sees it: `<Connect action>` on every stream, the action
webhook's answer, and a reconnected stream that re-attaches to its call instead of starting one.
(Processes, a real nats-server and kills: test_edge_failover.py.)"""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import pytest
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.contracts.events import EDGE_HANDOVER, EDGE_TAKEOVER
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.service

CALL_SID = "CA" + "0123456789abcdef" * 2
FORM = {"CallSid": CALL_SID, "AccountSid": "AC" + "fedcba9876543210" * 2, "From": "+15550001111",
        "To": "+15550002222", "Direction": "inbound", "CallStatus": "ringing", "ApiVersion": "2010-04-01"}
TOKEN = "12345678901234567890123456789012"


def post(client, path: str, form: dict, headers: dict | None = None):
    return client.post(path, content=urlencode(form),
                       headers={"content-type": "application/x-www-form-urlencoded", **(headers or {})})


def connect_of(xml: str) -> tuple[str, str, dict[str, str]]:
    """(action URL, stream URL, parameters) of a `<Connect action><Stream>` answer."""
    root = ElementTree.fromstring(xml)
    connect, stream = root.find("./Connect"), root.find("./Connect/Stream")
    assert connect is not None and stream is not None, xml
    return connect.get("action", ""), stream.get("url", ""), {p.get("name"): p.get("value") for p in stream}


def action_path(action: str) -> str:
    parts = urlsplit(action)
    return f"{parts.path}?{parts.query}"


def test_every_stream_names_an_action_url_with_its_call(edge) -> None:
    action, _, _ = connect_of(post(edge.client, "/twilio/voice?agent=sales", FORM).text)
    parts = urlsplit(action)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://edge.example.com/twilio/action"
    assert parse_qs(parts.query) == {"call": [CALL_SID], "agent": ["sales"]}


def test_a_call_that_goes_on_is_reconnected_to_the_same_call(edge) -> None:
    action, _, _ = connect_of(post(edge.client, "/twilio/voice?agent=sales", FORM).text)
    response = post(edge.client, action_path(action), {**FORM, "CallStatus": "in-progress"})
    assert response.status_code == 200
    again, url, params = connect_of(response.text)
    assert url == "wss://edge.example.com/twilio/stream"
    assert again == action  # a second drop reconnects the same way
    assert (params["takeover"], params["call_sid"], params["agent"]) == ("1", CALL_SID, "sales")


@pytest.mark.parametrize("status", ["completed", "canceled", "failed"])
def test_a_call_twilio_reports_over_is_hung_up(edge, status: str) -> None:
    response = post(edge.client, f"/twilio/action?call={CALL_SID}&agent=sales", {**FORM, "CallStatus": status})
    assert ElementTree.fromstring(response.text).find("./Hangup") is not None


def test_an_action_for_another_call_or_no_call_reconnects_nothing(edge) -> None:
    other = "CA" + "f" * 32
    response = post(edge.client, f"/twilio/action?call={other}&agent=sales", {**FORM, "CallStatus": "in-progress"})
    assert ElementTree.fromstring(response.text).find("./Hangup") is not None
    assert post(edge.client, "/twilio/action?call=bad.id", FORM).status_code == 400


def test_a_reconnected_stream_re_attaches_without_starting_a_call(edge, tw) -> None:
    action, _, _ = connect_of(post(edge.client, "/twilio/voice?agent=sales", FORM).text)
    _, _, params = connect_of(post(edge.client, action_path(action), {**FORM, "CallStatus": "in-progress"}).text)
    with edge.client.websocket_connect("/twilio/stream") as ws:
        ws.send_json(tw.connected())
        ws.send_json(tw.start(custom=params))
        [event] = edge.wait_for(subjects.event(CALL_SID))
        assert event["name"] == EDGE_TAKEOVER and event["data"]["stream_sid"] == tw.STREAM_SID
        assert edge.on(subjects.CALLS_START) == []  # the call goes on; the stages keep it
        ws.send_json(tw.media(seq=2, chunk=1))
        edge.wait_for(subjects.audio_in(CALL_SID))  # the caller's audio flows again
        edge.client.portal.call(edge.broker.publish, tw.agent_audio("turn1", 0, b"\xff" * 320, mark="turn1:1"),
                                subjects.audio_out(CALL_SID))
        got = tw.receive_until_mark(ws, "turn1:1")  # and the agent's
        assert got[0]["event"] == "media"  # (receive_until_mark returns the JSON messages)
        ws.send_json(tw.stop(seq=3))
        edge.wait_for(subjects.CALLS_END)


def test_a_handed_over_stream_closes_without_ending_the_call(edge, tw) -> None:
    ws = tw.open_call(edge)
    [stream] = list(edge.client.app.state.registry.streams)
    edge.client.portal.call(lambda: stream.hand_over())  # what a draining edge does at its deadline
    assert tw.receive(ws) == {"close": 1001, "reason": "edge draining"}
    handover = [e for e in edge.wait_for(subjects.event(tw.CALL_SID)) if e["name"] == EDGE_HANDOVER]
    assert handover and handover[0]["data"]["reason"] == "edge draining"
    assert edge.on(subjects.CALLS_END) == []
    assert [c for c in edge.on(subjects.control(tw.CALL_SID)) if c["action"] == "ended"] == []
    ws.__exit__(None, None, None)


def test_the_action_webhook_checks_twilio_s_signature(monkeypatch: pytest.MonkeyPatch, tw) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    settings = TelephonySettings(public_url="https://edge.example.com")
    for edge in tw.make_edge(settings):
        path = f"/twilio/action?call={CALL_SID}&agent=sales"
        form = {**FORM, "CallStatus": "in-progress"}
        assert post(edge.client, path, form).status_code == 403
        forged = RequestValidator(TOKEN).compute_signature(
            f"https://edge.example.com/twilio/action?call={'CA' + 'f' * 32}&agent=sales", form)
        assert post(edge.client, path, form, {"X-Twilio-Signature": forged}).status_code == 403
        signature = RequestValidator(TOKEN).compute_signature("https://edge.example.com" + path, form)
        response = post(edge.client, path, form, {"X-Twilio-Signature": signature})
        assert response.status_code == 200 and connect_of(response.text)[2]["takeover"] == "1"


def test_a_draining_edge_is_unready_serves_its_call_then_hands_it_over(edge, tw) -> None:
    import time

    from ringline.services.telephony.drain import drain

    ws = tw.open_call(edge)
    started = time.monotonic()
    draining = edge.client.portal.start_task_soon(drain, edge.client.app.state.registry, 1.0)
    time.sleep(0.2)
    response = edge.client.get("/health")
    assert (response.status_code, response.json()["status"], response.json()["active_calls"]) == (503, "draining", 1)
    ws.send_json(tw.media(seq=2, chunk=1))  # the call goes on meanwhile
    edge.wait_for(subjects.audio_in(tw.CALL_SID))
    assert tw.receive(ws, timeout=3.0) == {"close": 1001, "reason": "edge draining"}
    assert time.monotonic() - started >= 0.9  # not before the deadline
    draining.result(timeout=5.0)
    assert edge.on(subjects.CALLS_END) == []
    ws.__exit__(None, None, None)
