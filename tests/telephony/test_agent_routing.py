"""Routing by the dialled number: the agents file picks the agent, and the agent's voice and
vocabulary reach the other stages on `CallStart.custom` (the TTS and STT know nothing of agents)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree

import pytest

from ringline.contracts import subjects
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.service

AGENTS = """
default_agent: reception
agents:
  - id: reception
    name: Ava
    numbers: ["+1 (555) 010-0001"]
  - id: sales
    name: Sam
    numbers: ["+15550100002", "+15550100003"]
    voice: {cartesia_voice_id: voice-sam, cartesia_model: sonic-turbo}
    providers: {keyterms: [Ringline, "Acme Pro", SKU-42]}
    turn_taking: {end_silence_ms: 900, max_turn_s: 20, barge_in_min_ms: 300}
"""

FORM = {"CallSid": "CA" + "0123456789abcdef" * 2, "AccountSid": "AC" + "fedcba9876543210" * 2,
        "From": "+15550009999", "Direction": "inbound", "CallStatus": "ringing"}


@pytest.fixture
def agents_file(tmp_path: Path) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(AGENTS)
    return path


@pytest.fixture
def routed(tw, agents_file, monkeypatch):
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    # These tests poll the webhook with one caller number faster than any caller dials: no rate limit.
    settings = TelephonySettings(public_url="https://edge.example.com", RINGLINE_AGENTS_FILE=str(agents_file),
                                 caller_calls_per_minute=0)
    yield from tw.make_edge(settings)


def agent_for(edge, to: str, query: str = "") -> str:
    response = edge.client.post("/twilio/voice" + (f"?{query}" if query else ""),
                                content=urlencode({**FORM, "To": to}),
                                headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    stream = ElementTree.fromstring(response.text).find("./Connect/Stream")
    assert stream is not None
    return {p.attrib["name"]: p.attrib["value"] for p in stream.findall("Parameter")}["agent"]


def test_the_dialled_number_picks_the_agent(routed) -> None:
    assert agent_for(routed, "+15550100001") == "reception"
    assert agent_for(routed, "+15550100003") == "sales"
    assert agent_for(routed, "+1 555 010 0002") == "sales"  # Twilio sends E.164; formatting is forgiven


def test_a_number_no_agent_lists_goes_to_the_books_default_agent(routed) -> None:
    assert agent_for(routed, "+15550107777") == "reception"
    assert agent_for(routed, "") == "reception"


def test_the_agent_query_parameter_wins(routed) -> None:
    assert agent_for(routed, "+15550100001", "agent=sales") == "sales"


def test_an_edit_to_the_agents_file_takes_effect_on_the_next_call(routed, agents_file) -> None:
    assert agent_for(routed, "+15550100009") == "reception"
    agents_file.write_text(AGENTS.replace('"+15550100003"', '"+15550100003", "+15550100009"'))
    deadline = time.monotonic() + 5  # the book is re-read at most once a second
    while agent_for(routed, "+15550100009") != "sales":
        assert time.monotonic() < deadline, "the edited agents file was not picked up"
        time.sleep(0.1)


def start_call(edge, tw, agent: str) -> dict:
    with edge.client.websocket_connect("/twilio/stream") as ws:
        ws.send_json(tw.connected())
        ws.send_json(tw.start(custom={"agent": agent, "caller": "+15550009999", "callee": "+15550100002"}))
        (call,) = edge.wait_for(subjects.CALLS_START)
        ws.send_json(tw.stop(seq=2))
    return call


def test_the_agents_voice_and_keyterms_ride_on_the_call_start(routed, tw) -> None:
    call = start_call(routed, tw, "sales")
    assert call["agent_id"] == "sales"
    assert call["custom"]["tts_voice"] == "voice-sam"
    assert call["custom"]["tts_model"] == "sonic-turbo"
    assert call["custom"]["stt_keyterms"] == "Ringline,Acme Pro,SKU-42"
    # the STT's part of the agent's turn-taking (the brain reads its own part from the agents file)
    assert call["custom"]["stt_end_silence_ms"] == "900" and call["custom"]["stt_max_utterance_ms"] == "20000"
    assert "stt_barge_in_min_ms" not in call["custom"]


def test_an_agent_without_voice_options_adds_none(routed, tw) -> None:
    call = start_call(routed, tw, "reception")
    assert not [key for key in call["custom"] if key.startswith(("tts_", "stt_"))]


def test_without_an_agents_file_the_edge_default_agent_answers_every_number(edge) -> None:
    assert agent_for(edge, "+15550100001") == "default"
