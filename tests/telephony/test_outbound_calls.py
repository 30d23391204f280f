"""Outbound calls: `POST /calls` (bearer token, validated body), the context kept in JetStream KV,
the call placed through Twilio's REST API with answering-machine detection (`doubles.twilio`
stands in for api.twilio.com), and the answered call's webhook and stream carrying the direction,
purpose and who answered. Storage runs against a real nats-server."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit
from xml.etree import ElementTree

import nats
import pytest
from faststream.nats.annotations import NatsMessage
from nats.js.errors import NoKeysError
from starlette.testclient import TestClient
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.contracts.runtime import create_broker
from ringline.services.telephony.app import create_app
from ringline.services.telephony.settings import TelephonySettings

from doubles.twilio import TwilioApi

pytestmark = pytest.mark.service

ACCOUNT = "AC" + "fedcba9876543210" * 2
TWILIO_TOKEN = "0123456789abcdef0123456789abcdef"
API_TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
PURPOSE = "confirm the dentist appointment on Tuesday at 10"
AGENTS = """
agents:
  - id: reception
    name: Ava
    numbers: ["+15550100001"]
  - id: nonumber
    name: Nina
  - id: brief
    numbers: ["+15550100002"]
    outbound: {on_machine: hangup}
"""


@pytest.fixture
def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS)
    return path


def edge_settings(agents_file: Path, nats_url: str = "nats://127.0.0.1:1", twilio_url: str | None = None,
                  **more: Any) -> TelephonySettings:
    values: dict[str, Any] = {"public_url": "https://edge.example.com", "nats_url": nats_url,
                              "RINGLINE_AGENTS_FILE": str(agents_file), "api_token": API_TOKEN}
    if twilio_url is not None:
        values.update(twilio_account_sid=ACCOUNT, twilio_auth_token=TWILIO_TOKEN, twilio_api_url=twilio_url,
                      twilio_api_timeout_s=2.0)
    return TelephonySettings(**{**values, **more})


class RealEdge:
    """The edge app on a real nats-server, recording what it publishes on `calls.>`."""

    def __init__(self, settings: TelephonySettings) -> None:
        self.settings = settings
        self.seen: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        broker = create_broker(settings, "telephony")

        @broker.subscriber("calls.>")
        async def record(body: dict, msg: NatsMessage) -> None:
            with self._lock:
                self.seen.append((msg.raw_message.subject, body))

        self.client = TestClient(create_app(settings, broker=broker))

    def __enter__(self) -> RealEdge:
        self.client.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.__exit__(*exc)

    def starts(self, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [body for subject, body in self.seen if subject == subjects.CALLS_START]
            if got:
                return got[0]
            time.sleep(0.02)
        raise AssertionError("no calls.start")


def twilio_answers(client: TestClient, url: str, call_sid: str, answered_by: str) -> dict[str, str]:
    """What Twilio does once the callee picks up: POST the call's URL (signed), read the stream
    parameters from the TwiML."""
    form = {"CallSid": call_sid, "AccountSid": ACCOUNT, "From": "+15550100001", "To": "+15550100777",
            "Direction": "outbound-api", "CallStatus": "in-progress", "AnsweredBy": answered_by}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url, form)
    parts = urlsplit(url)
    response = client.post(f"{parts.path}?{parts.query}", content=urlencode(form),
                           headers={"content-type": "application/x-www-form-urlencoded",
                                    "X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    stream = ElementTree.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None, response.text
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}


@pytest.fixture
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


# ----------------------------------------------------------------- the endpoint's gatekeeping


@pytest.fixture
def gate(tw, agents_file, twilio_api):
    """An edge on the in-memory broker: everything here is refused before anything is stored."""
    yield from tw.make_edge(edge_settings(agents_file, twilio_url=twilio_api.url))


def test_without_a_token_configured_the_endpoint_is_disabled(tw, agents_file) -> None:
    for edge in tw.make_edge(edge_settings(agents_file, api_token=None)):
        response = edge.client.post("/calls", json={"to": "+15550100777", "purpose": PURPOSE}, headers=AUTH)
        assert response.status_code == 503
        assert "RINGLINE_TELEPHONY_API_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": API_TOKEN},
                                     {"Authorization": f"Basic {API_TOKEN}"}])
def test_a_missing_or_wrong_token_is_401(gate, twilio_api, headers) -> None:
    response = gate.client.post("/calls", json={"to": "+15550100777", "purpose": PURPOSE}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert twilio_api.requests == []


@pytest.mark.parametrize(("body", "field"), [
    ({"to": "5550100777", "purpose": PURPOSE}, "to"),  # no country code
    ({"to": "+1555", "purpose": PURPOSE}, "to"),
    ({"to": "call me", "purpose": PURPOSE}, "to"),
    ({"to": "+15550100777"}, "purpose"),
    ({"to": "+15550100777", "purpose": "   "}, "purpose"),
    ({"to": "+15550100777", "purpose": "x" * 301}, "purpose"),
    ({"to": "+15550100777", "purpose": PURPOSE, "agent": "nobody"}, "agent"),
    ({"to": "+15550100777", "purpose": PURPOSE, "agent": "nonumber"}, "agent"),  # nothing to call from
    ({"to": "+15550100777", "purpose": PURPOSE, "colour": "red"}, "colour"),
])
def test_a_bad_body_is_422_naming_the_field(gate, twilio_api, body, field) -> None:
    response = gate.client.post("/calls", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in [problem["field"] for problem in response.json()["detail"]]
    assert twilio_api.requests == []


def test_not_json_is_422(gate) -> None:
    response = gate.client.post("/calls", content=b"to=+15550100777", headers=AUTH)
    assert response.status_code == 422


def test_without_twilio_credentials_placing_a_call_is_503(tw, agents_file) -> None:
    for edge in tw.make_edge(edge_settings(agents_file)):
        response = edge.client.post("/calls", json={"to": "+15550100777", "purpose": PURPOSE}, headers=AUTH)
        assert response.status_code == 503
        assert "TWILIO_ACCOUNT_SID" in response.json()["detail"]


# ----------------------------------------------------------- placed, answered, streamed (real NATS)


@pytest.mark.integration  # real nats-server
def test_an_outbound_call_is_placed_answered_and_starts_as_outbound(nats_server, agents_file,
                                                                    twilio_api, tw) -> None:
    settings = edge_settings(agents_file, nats_server.url, twilio_api.url)
    with RealEdge(settings) as edge:
        response = edge.client.post("/calls", headers=AUTH, json={
            "to": "+1 555 010 0777", "agent": "reception", "purpose": PURPOSE})
        assert response.status_code == 201, response.text
        placed = response.json()
        (created,) = twilio_api.created
        assert placed["call_sid"] == created["sid"] and placed["to"] == "+15550100777"
        # Twilio was asked to call the number from the agent's own, with machine detection
        assert created["To"] == "+15550100777" and created["From"] == "+15550100001"
        # it leaves messages on machines: detection waits for the end of the machine's greeting
        assert created["MachineDetection"] == "DetectMessageEnd" and created["Method"] == "POST"
        (request,) = twilio_api.requests
        assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls.json"
        assert base64.b64decode(request["auth"].removeprefix("Basic ")).decode() == f"{ACCOUNT}:{TWILIO_TOKEN}"
        url = created["Url"]
        assert url.startswith("https://edge.example.com/twilio/voice?")
        assert parse_qs(urlsplit(url).query) == {"agent": ["reception"], "outbound": [placed["id"]]}

    # The callee answers later; another edge replica (a fresh app) serves the webhook.
    with RealEdge(settings) as edge:
        params = twilio_answers(edge.client, url, placed["call_sid"], "human")
        assert params["direction"] == "outbound" and params["agent"] == "reception"
        assert params["purpose"] == PURPOSE and params["answered_by"] == "human"
        with edge.client.websocket_connect("/twilio/stream", headers={
                "X-Twilio-Signature": RequestValidator(TWILIO_TOKEN).compute_signature(
                    "wss://edge.example.com/twilio/stream", {})}) as ws:
            ws.send_json(tw.connected())
            ws.send_json(tw.start(call_sid=placed["call_sid"], custom=params))
            call = edge.starts()
            ws.send_json(tw.stop(seq=2, call_sid=placed["call_sid"]))
    assert call["call_id"] == placed["call_sid"] and call["agent_id"] == "reception"
    assert call["direction"] == "outbound"
    assert call["custom"]["purpose"] == PURPOSE and call["custom"]["answered_by"] == "human"


@pytest.mark.integration  # real nats-server
def test_a_machine_answer_and_an_unknown_outbound_id_still_connect(nats_server, agents_file,
                                                                   twilio_api, caplog) -> None:
    settings = edge_settings(agents_file, nats_server.url, twilio_api.url)
    with RealEdge(settings) as edge:
        placed = edge.client.post("/calls", headers=AUTH, json={"to": "+15550100777", "purpose": PURPOSE}).json()
        url = twilio_api.created[0]["Url"]
        assert "agent=reception" in url  # no agent given: the book's default
        edge.client.post("/calls", headers=AUTH, json={"to": "+15550100777", "purpose": PURPOSE, "agent": "brief"})
        assert twilio_api.created[1]["MachineDetection"] == "Enable"  # it hangs up on machines: no waiting
        params = twilio_answers(edge.client, url, placed["call_sid"], "machine_start")
        assert (params["answered_by"], params["purpose"]) == ("machine_start", PURPOSE)
        # a context that expired (or never was): the call still connects, as outbound, without purpose
        stale = url.replace(placed["id"], "0" * 32)
        params = twilio_answers(edge.client, stale, placed["call_sid"], "unknown")
        assert (params["direction"], params["purpose"], params["agent"]) == ("outbound", "", "reception")
    assert any("no stored context" in r.getMessage() for r in caplog.records)


@pytest.mark.integration  # real nats-server
def test_twilio_refusing_the_call_is_502_and_nothing_is_kept(nats_server, agents_file) -> None:
    with TwilioApi(status=400) as api, RealEdge(edge_settings(agents_file, nats_server.url, api.url)) as edge:
        response = edge.client.post("/calls", headers=AUTH, json={"to": "+15550100777", "purpose": PURPOSE})
        assert response.status_code == 502
        assert "Twilio answered 400" in response.json()["detail"]
    assert asyncio.run(stored_keys(nats_server.url)) == []


async def stored_keys(nats_url: str) -> list[str]:
    connection = await nats.connect(nats_url)
    try:
        kv = await connection.jetstream().key_value("ringline_outbound")
        try:
            return await kv.keys()
        except NoKeysError:
            return []
    finally:
        await connection.close()


@pytest.mark.integration  # real nats-server
def test_a_simulated_call_is_stored_but_not_placed(nats_server, agents_file) -> None:
    with RealEdge(edge_settings(agents_file, nats_server.url)) as edge:  # no Twilio credentials at all
        response = edge.client.post("/calls", headers=AUTH, json={
            "to": "+15550100777", "agent": "nonumber", "purpose": PURPOSE, "simulate": True})
        assert response.status_code == 201, response.text
        placed = response.json()
        assert placed["simulated"] is True and placed["call_sid"].startswith("CA")
        query = parse_qs(urlsplit(placed["voice_url"]).query)
        assert query == {"agent": ["nonumber"], "outbound": [placed["id"]]}
        form = {"CallSid": placed["call_sid"], "From": "", "To": "+15550100777", "Direction": "outbound-api",
                "AnsweredBy": "human"}
        twiml = edge.client.post(placed["voice_url"], content=urlencode(form),
                                 headers={"content-type": "application/x-www-form-urlencoded"}).text
        stream = ElementTree.fromstring(twiml).find("./Connect/Stream")
        assert stream is not None
        params = {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}
        assert params["purpose"] == PURPOSE and params["agent"] == "nonumber"


def test_without_jetstream_the_call_is_not_placed(tw, agents_file, twilio_api) -> None:
    """The in-memory broker has no JetStream: storing fails, so nothing is asked of Twilio."""
    for edge in tw.make_edge(edge_settings(agents_file, twilio_url=twilio_api.url)):
        response = edge.client.post("/calls", json={"to": "+15550100777", "purpose": PURPOSE}, headers=AUTH)
        assert response.status_code == 503
        assert "JetStream" in response.json()["detail"]
        assert twilio_api.requests == []
