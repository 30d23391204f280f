"""The edge acts only on what is allowed (issue 11).

A stream opens only with the token its call's TwiML carried (a replayed Twilio signature opens
nothing); a socket that never starts, or goes silent, is closed; a transfer goes only to the
agent's own number, whatever the bus says; a control message about another call does nothing;
the edge takes a bounded number of streams, webhook bodies and calls per caller.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.contracts.messages import Control
from ringline.services.telephony.settings import TelephonySettings

from doubles.twilio import TwilioApi

pytestmark = pytest.mark.service

CALL = "CA" + "0123456789abcdef" * 2
OTHER_CALL = "CA" + "fedcba9876543210" * 2
ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC = "https://edge.example.com"
DESK = "+15550100077"  # the agent's transfer number
EVIL = "+19005550100"  # a premium number someone publishes on the bus

AGENTS = f"""
default_agent: sales
agents:
  - id: sales
    name: Sam
    numbers: ["+15550002222"]
    transfer_number: "{DESK}"
"""


def ws_signature() -> dict[str, str]:
    return {"X-Twilio-Signature": RequestValidator(TOKEN).compute_signature("wss://edge.example.com/twilio/stream",
                                                                             {})}


@pytest.fixture
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


@pytest.fixture
def signed(tw, tmp_path: Path, twilio_api: TwilioApi, monkeypatch: pytest.MonkeyPatch):
    """An edge that checks signatures (TWILIO_AUTH_TOKEN set), with an agents file."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    agents = tmp_path / "agents.yaml"
    agents.write_text(AGENTS)

    def make(**overrides):
        settings = TelephonySettings(public_url=PUBLIC, twilio_account_sid=ACCOUNT, twilio_auth_token=TOKEN,
                                     twilio_api_url=twilio_api.url, twilio_api_timeout_s=2.0,
                                     RINGLINE_AGENTS_FILE=str(agents), **overrides)
        return tw.make_edge(settings)

    made = []

    def edge(**overrides):
        edges = make(**overrides)
        built = next(edges)
        built.sockets = []  # closed before the edge stops (an open test socket would hold it)
        made.append((edges, built))
        return built

    yield edge
    for edges, built in made:
        for ws in built.sockets:
            ws.__exit__(None, None, None)
        edges.close()


def opened(edge, ws):
    edge.sockets.append(ws)
    return ws


def open_socket(edge, tw, custom: dict[str, str] | None, call_sid: str = CALL):
    ws = opened(edge, edge.client.websocket_connect("/twilio/stream", headers=ws_signature()).__enter__())
    ws.send_json(tw.connected())
    ws.send_json(tw.start(call_sid=call_sid, custom=custom, seq=1))
    return ws


# ------------------------------------------------------------------------ stream tokens


def test_the_voice_webhooks_token_opens_its_calls_stream(signed, tw) -> None:
    edge = signed()
    form = {"CallSid": CALL, "AccountSid": ACCOUNT, "From": "+15550001111", "To": "+15550002222",
            "Direction": "inbound", "CallStatus": "ringing"}
    signature = RequestValidator(TOKEN).compute_signature(f"{PUBLIC}/twilio/voice", form)
    response = edge.client.post("/twilio/voice", content=urlencode(form), headers={
        "content-type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature})
    stream = ElementTree.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params["stream_token"]
    open_socket(edge, tw, params)
    (call,) = edge.wait_for(subjects.CALLS_START)
    assert call["call_id"] == CALL
    assert "stream_token" not in call["custom"], "the token must not travel on the bus"


@pytest.mark.parametrize("case", ["missing", "another call's", "expired", "forged"])
def test_a_valid_signature_without_the_calls_token_opens_nothing(signed, tw, case: str, caplog) -> None:
    """Twilio signs the stream URL only: a captured signature must not open a stream for a call."""
    edge = signed()
    tokens = edge.client.app.state.stream_tokens
    token = {"missing": None,
             "another call's": tokens.issue(OTHER_CALL, time.time()),
             "expired": tokens.issue(CALL, time.time() - 10 * tokens.ttl_s),
             "forged": f"{int(time.time()) + 60}.{'0' * 64}"}[case]
    custom = {"agent": "sales", "call_sid": CALL, **({"stream_token": token} if token else {})}
    with caplog.at_level(logging.WARNING, logger="ringline"):
        ws = open_socket(edge, tw, custom)
        assert tw.receive(ws) == {"close": 1008, "reason": "stream not authorized"}
    assert edge.on(subjects.CALLS_START) == [] and edge.on(subjects.CALLS_END) == []
    assert any("rejected a stream" in r.getMessage() for r in caplog.records)


def test_a_takeover_needs_the_token_too(signed, tw) -> None:
    """A reconnect (`takeover=1`) re-attaches to a live call: without its token it is refused."""
    edge = signed()
    ws = open_socket(edge, tw, {"agent": "sales", "call_sid": CALL, "takeover": "1"})
    assert tw.receive(ws)["close"] == 1008
    assert edge.on(subjects.event(CALL)) == []


# ------------------------------------------------------------------- sockets that linger


def test_a_socket_that_never_starts_is_closed_and_forgotten(signed, tw) -> None:
    edge = signed(start_timeout_s=0.3)
    ws = opened(edge, edge.client.websocket_connect("/twilio/stream", headers=ws_signature()).__enter__())
    ws.send_json(tw.connected())
    for i in range(20):  # early media is buffered until `start`, then dropped with the socket
        ws.send_json(tw.media(seq=2 + i, chunk=1 + i))
    assert tw.receive(ws, timeout=3.0) == {"close": 1008, "reason": "no start"}
    deadline = time.monotonic() + 2
    while edge.client.app.state.registry.streams and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not edge.client.app.state.registry.streams
    assert edge.on(subjects.CALLS_START) == []


def test_a_stream_that_goes_silent_is_cut_off(signed, tw) -> None:
    edge = signed(idle_timeout_s=0.3)
    ws = opened(edge, tw.open_call(edge, ws_signature()))
    assert tw.receive(ws, timeout=3.0) == {"close": 1008, "reason": "stream idle"}
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == "edge closed: stream idle"


# -------------------------------------------------------------------- what the bus asks


def test_a_transfer_goes_only_to_the_agents_number(signed, tw, twilio_api, caplog) -> None:
    edge = signed()
    ws = opened(edge, tw.open_call(edge, ws_signature()))
    with caplog.at_level(logging.WARNING, logger="ringline"):
        edge.publish(Control(call_id=CALL, action="transfer", target=EVIL), subjects.control(CALL))
        assert tw.receive(ws) == {"close": 1000, "reason": "call transferred"}
    (request,) = twilio_api.requests
    twiml = ElementTree.fromstring(request["form"]["Twiml"][0])
    assert [(child.tag, child.text) for child in twiml] == [("Dial", DESK)]
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == f"transferred to {DESK}"
    ignored = [r for r in caplog.records if "ignored" in r.getMessage() and EVIL in r.getMessage()]
    assert len(ignored) == 1


def test_a_control_message_about_another_call_does_nothing(signed, tw, twilio_api) -> None:
    edge = signed()
    ws = opened(edge, tw.open_call(edge, ws_signature()))
    edge.publish(Control(call_id=OTHER_CALL, action="hangup"), subjects.control(CALL))
    assert tw.nothing_sent(ws, within=0.4)
    assert twilio_api.requests == [] and edge.on(subjects.CALLS_END) == []


# ----------------------------------------------------------------------------- limits


def test_streams_beyond_the_edges_maximum_are_turned_away(signed, tw) -> None:
    edge = signed(max_streams=1)
    first = opened(edge, tw.open_call(edge, ws_signature()))
    second = opened(edge, edge.client.websocket_connect("/twilio/stream", headers=ws_signature()).__enter__())
    assert tw.receive(second) == {"close": 1013, "reason": "edge at capacity"}
    assert tw.nothing_sent(first)


def test_an_oversized_webhook_body_is_refused_unread(signed) -> None:
    edge = signed(max_webhook_bytes=2048)
    response = edge.client.post("/twilio/voice", content=b"CallSid=" + b"A" * 4096,
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    chunked = edge.client.post("/twilio/voice", content=iter([b"CallSid=", b"A" * 4096]),
                               headers={"content-type": "application/x-www-form-urlencoded"})
    assert chunked.status_code == 413


def test_a_caller_dialling_too_often_gets_a_busy_tone(tw, monkeypatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    edges = tw.make_edge(TelephonySettings(public_url=PUBLIC, caller_calls_per_minute=2, agent_calls_per_minute=3))
    edge = next(edges)

    def call(caller: str) -> ElementTree.Element:
        form = {"CallSid": CALL, "From": caller, "To": "+15550002222", "Direction": "inbound"}
        response = edge.client.post("/twilio/voice", content=urlencode(form),
                                    headers={"content-type": "application/x-www-form-urlencoded"})
        assert response.status_code == 200
        return ElementTree.fromstring(response.text)

    answers = [call("+15550001111") for _ in range(3)]
    assert [a.find("./Connect") is not None for a in answers] == [True, True, False]
    assert answers[2].find("./Reject").get("reason") == "busy"
    assert call("+15550003333").find("./Connect") is not None  # another caller still gets through
    assert call("+15550004444").find("./Reject") is not None  # ... until the agent's own limit
    edges.close()


def test_without_a_shared_secret_tokens_are_handed_out_but_not_enforced(tw, monkeypatch) -> None:
    """A local edge (no Twilio token, no stream secret) signs with a secret of its own process: a
    stream that reached another replica could not be checked, so none is refused for its token."""
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("RINGLINE_TELEPHONY_STREAM_SECRET", raising=False)
    edges = tw.make_edge(TelephonySettings(public_url="http://127.0.0.1:8080"))
    edge = next(edges)
    tokens = edge.client.app.state.stream_tokens
    assert not tokens.required
    assert tokens.check("1.deadbeef", CALL, time.time()) is None and tokens.check(None, CALL, time.time()) is None
    edges.close()
