"""`POST /twilio/voice` TwiML and X-Twilio-Signature checks on the webhook and the socket."""

from __future__ import annotations

import time
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from starlette.websockets import WebSocketDisconnect
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.service

TOKEN = "12345678901234567890123456789012"
FORM = {
    "CallSid": "CA" + "0123456789abcdef" * 2,
    "AccountSid": "AC" + "fedcba9876543210" * 2,
    "From": "+15550001111",
    "To": "+15550002222",
    "Direction": "inbound",
    "CallStatus": "ringing",
    "ApiVersion": "2010-04-01",
}


def parse_twiml(xml: str) -> tuple[str, dict[str, str]]:
    root = ElementTree.fromstring(xml)
    assert root.tag == "Response"
    stream = root.find("./Connect/Stream")
    assert stream is not None, xml
    return stream.attrib["url"], {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


def post_voice(client, query: str = "", headers: dict | None = None, form: dict | None = None):
    return client.post(
        "/twilio/voice" + (f"?{query}" if query else ""),
        content=urlencode(form or FORM),
        headers={"content-type": "application/x-www-form-urlencoded", **(headers or {})},
    )


def test_twiml_connects_a_stream_with_parameters(edge) -> None:
    response = post_voice(edge.client, query="agent=sales")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    url, params = parse_twiml(response.text)
    assert url == "wss://edge.example.com/twilio/stream"
    token = params.pop("stream_token")  # binds the stream to this call (test_edge_security)
    assert edge.client.app.state.stream_tokens.check(token, FORM["CallSid"], time.time()) is None
    assert params == {"agent": "sales", "caller": "+15550001111", "callee": "+15550002222",
                      "call_sid": FORM["CallSid"]}


def test_twiml_default_agent_and_plain_ws_for_http(tw, monkeypatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    settings = TelephonySettings(host="127.0.0.1", port=8099, default_agent="reception")
    for edge in tw.make_edge(settings):
        url, params = parse_twiml(post_voice(edge.client).text)
        assert url == "ws://127.0.0.1:8099/twilio/stream"
        assert params["agent"] == "reception"


# --------------------------------------------------------------------------- signatures


@pytest.fixture
def signed_edge(tw, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", TOKEN)
    settings = TelephonySettings(public_url="https://abc.ngrok.app")
    assert settings.twilio_auth_token is not None
    yield from tw.make_edge(settings)


def sign(url: str, params: dict) -> str:
    return RequestValidator(TOKEN).compute_signature(url, params)


def test_signed_webhook_passes(signed_edge) -> None:
    signature = sign("https://abc.ngrok.app/twilio/voice?agent=sales", FORM)
    response = post_voice(signed_edge.client, "agent=sales", {"X-Twilio-Signature": signature})
    assert response.status_code == 200
    assert parse_twiml(response.text)[0] == "wss://abc.ngrok.app/twilio/stream"


@pytest.mark.parametrize(
    ("query", "signature"),
    [
        ("", None),
        ("", "bm90IGEgc2lnbmF0dXJl"),
        ("agent=sales", sign("https://abc.ngrok.app/twilio/voice?agent=other", FORM)),  # the query is signed
        ("", sign("https://abc.ngrok.app/twilio/voice", {**FORM, "From": "+19999999999"})),  # so is the form
    ],
)
def test_forged_or_missing_webhook_signature_is_403(signed_edge, query: str, signature: str | None) -> None:
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = post_voice(signed_edge.client, query, headers)
    assert response.status_code == 403
    assert "<Response>" not in response.text


def test_signature_uses_public_url_not_the_host_header(signed_edge) -> None:
    # A request signed for the Host it claims (testserver) is refused: only public_url counts.
    forged_for_host = sign("http://testserver/twilio/voice", FORM)
    assert post_voice(signed_edge.client, headers={"X-Twilio-Signature": forged_for_host}).status_code == 403
    signature = sign("https://abc.ngrok.app/twilio/voice", FORM)
    headers = {"X-Twilio-Signature": signature, "Host": "evil.example.net"}
    assert post_voice(signed_edge.client, headers=headers).status_code == 200


def test_signed_websocket_passes(signed_edge, tw) -> None:
    signature = sign("wss://abc.ngrok.app/twilio/stream", {})
    with signed_edge.client.websocket_connect("/twilio/stream", headers={"X-Twilio-Signature": signature}) as ws:
        ws.send_json(tw.connected())
        ws.send_json(tw.start(custom=tw.signed_custom(signed_edge)))  # with its call's stream token
        signed_edge.wait_for(subjects.CALLS_START)


@pytest.mark.parametrize("signature", [None, "Zm9yZ2Vk", sign("wss://testserver/twilio/stream", {})])
def test_forged_or_missing_websocket_signature_closes_1008(signed_edge, tw, signature) -> None:
    headers = {"X-Twilio-Signature": signature} if signature else {}
    with signed_edge.client.websocket_connect("/twilio/stream", headers=headers) as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1008
    assert not signed_edge.on(subjects.CALLS_START)


def test_without_token_nothing_is_checked(edge) -> None:
    assert post_voice(edge.client, headers={"X-Twilio-Signature": "garbage"}).status_code == 200
