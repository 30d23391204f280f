"""The softphone's and dashboard's pure parts: who may use them, the live board, the waterfall."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from ringline.contracts.messages import (
    CallEnd,
    CallEvent,
    CallListRequest,
    CallRecord,
    CallStart,
    SpeechEvent,
    Transcript,
    TurnRecord,
    TurnTiming,
)
from ringline.services.memory.store import matches
from ringline.services.telephony.live_board import AGENT, CALLER, ENDED, PAUSED, THINKING, LiveBoard
from ringline.services.telephony.settings import TelephonySettings
from ringline.services.telephony.waterfall import call_view, waterfall
from ringline.services.telephony.web_auth import WebGate, exposed, same_origin

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------ access


@pytest.mark.parametrize(("host", "public_url", "is_exposed"), [
    ("127.0.0.1", None, False),
    ("localhost", "http://localhost:8080", False),
    ("::1", None, False),
    ("0.0.0.0", None, True),  # listening on every interface
    ("127.0.0.1", "https://abc.ngrok.app", True),  # tunnelled to the internet
    ("10.0.0.5", None, True),
])
def test_an_edge_is_exposed_when_anything_beyond_loopback_reaches_it(host, public_url, is_exposed) -> None:
    assert exposed(TelephonySettings(host=host, public_url=public_url)) is is_exposed


def test_a_loopback_edge_without_a_token_is_open_to_loopback_hosts_only() -> None:
    gate = WebGate(TelephonySettings(host="127.0.0.1"))
    assert not gate.disabled and not gate.needs_token
    assert gate.allows(None, "127.0.0.1:8080") and gate.allows(None, "localhost")
    # DNS rebinding: a page at evil.example re-pointed at 127.0.0.1 still sends its own name as Host.
    assert not gate.allows(None, "evil.example:8080")


def test_an_exposed_edge_without_a_token_refuses_everyone() -> None:
    gate = WebGate(TelephonySettings(host="0.0.0.0"))
    assert gate.disabled
    assert not gate.allows(None, "127.0.0.1") and not gate.allows("anything", "127.0.0.1")


def test_with_a_token_only_that_token_passes_whatever_the_host() -> None:
    gate = WebGate(TelephonySettings(host="0.0.0.0", web_token=SecretStr("s3cret-token")))
    assert gate.needs_token and not gate.disabled
    assert gate.allows("s3cret-token", "edge.example.com")
    assert not gate.allows("s3cret-tokeN", "edge.example.com")
    assert not gate.allows("", "127.0.0.1") and not gate.allows(None, "127.0.0.1")
    assert gate.presented({"authorization": "Bearer s3cret-token"}, {}) == "s3cret-token"
    assert gate.presented({}, {"token": "from-query"}) == "from-query"


def test_a_browser_socket_must_come_from_the_edge_itself() -> None:
    base = "https://edge.example.com"
    assert same_origin({"host": "127.0.0.1:8080", "origin": "http://127.0.0.1:8080"}, base)
    assert same_origin({"host": "internal:8080", "origin": "https://edge.example.com"}, base)
    assert same_origin({"host": "127.0.0.1:8080"}, base)  # no Origin: not a browser
    assert not same_origin({"host": "127.0.0.1:8080", "origin": "https://evil.example"}, base)


# ------------------------------------------------------------------------------ live board


def _start(call_id: str = "CA1", at: float = 100.0) -> CallStart:
    return CallStart(call_id=call_id, agent_id="sales", caller="+15550001111", started_at=at)


def test_the_board_follows_a_call_through_its_states() -> None:
    board = LiveBoard()
    view = board.on_start(_start())
    assert (view["agent_id"], view["caller"], view["state"]) == ("sales", "+15550001111", "connecting")
    timing = TurnTiming(speech_ended_at=101.0, edge_sent_at=101.8)
    first_audio = CallEvent(call_id="CA1", name="turn.first_audio", turn_id="t0", timing=timing)
    assert board.on_event(first_audio)["state"] == AGENT
    # The TTS stage says the turn is 2.5 s of audio: a viewer shows "listening" after that.
    assert board.on_event(CallEvent(call_id="CA1", name="tts.turn", turn_id="t0",
                                    data={"audio_ms": 2500.0}))["speaking_until"] == pytest.approx(104.3)
    assert board.on_speech(SpeechEvent(call_id="CA1", utterance_id="u1", kind="started"))["state"] == CALLER
    assert board.on_speech(SpeechEvent(call_id="CA1", utterance_id="u1", kind="continuing")) is None
    assert board.on_transcript(Transcript(call_id="CA1", utterance_id="u1", text="hi", is_final=False)) is None
    assert board.on_transcript(Transcript(call_id="CA1", utterance_id="u1", text="hi"))["state"] == THINKING
    view = board.on_event(CallEvent(call_id="CA1", name="turn.first_audio", turn_id="t1", timing=timing))
    assert view["turns"] == 2 and view["last_total_ms"] == pytest.approx(800.0)
    assert board.on_event(CallEvent(call_id="CA1", name="turn.paused", turn_id="t1"))["state"] == PAUSED
    assert board.on_event(CallEvent(call_id="CA1", name="turn.barge_in", turn_id="t1"))["interruptions"] == 1
    ended = board.on_end(CallEnd(call_id="CA1", reason="caller hung up", ended_at=130.0))
    assert (ended["state"], ended["end_reason"]) == (ENDED, "caller hung up")
    assert board.on_end(CallEnd(call_id="CA1")) is None  # once
    assert board.on_speech(SpeechEvent(call_id="CA1", utterance_id="u2", kind="started")) is None


def test_the_board_lists_the_newest_call_first_and_ignores_unknown_calls() -> None:
    board = LiveBoard()
    board.on_start(_start("CA1", 100.0))
    board.on_start(_start("CA2", 200.0))
    assert [c["call_id"] for c in board.views()] == ["CA2", "CA1"]
    assert board.on_event(CallEvent(call_id="CA9", name="turn.paused")) is None


# ------------------------------------------------------------------------------- waterfall


def test_stages_are_laid_end_to_end() -> None:
    bars = waterfall({"stt": 300.0, "brain": 700.0, "tts": 150.0, "edge": 2.0, "total": 1152.0})
    assert [(b["stage"], b["start_ms"], b["ms"]) for b in bars] == [
        ("stt", 0.0, 300.0), ("brain", 300.0, 700.0), ("tts", 1000.0, 150.0), ("edge", 1150.0, 2.0)]


def test_the_call_view_marks_barge_ins_fallbacks_and_takeovers_and_sums_cost() -> None:
    record = CallRecord(
        call_id="CA1", agent_id="sales", caller="+15550001111", started_at=100.0, ended_at=160.0,
        end_reason="caller hung up", trace_id="ab" * 16, cost={"total": 0.0123, "llm": 0.01, "currency": "USD"},
        turns=[
            TurnRecord(turn_id="u1", speaker="caller", text="hi", started_at=101.0, latency_ms={"stt": 250.0}),
            TurnRecord(turn_id="t1", speaker="agent", text="Hello there", started_at=102.0, interrupted=True,
                       heard_text="Hello", latency_ms={"stt": 250.0, "brain": 600.0, "tts": 120.0, "edge": 3.0,
                                                       "total": 973.0, "barge_in_reaction": 180.0},
                       cost={"total": 0.0123, "llm": 0.01}),
            TurnRecord(turn_id="t2", speaker="agent", text="Sorry, go on", started_at=120.0, resumed=1,
                       latency_ms={"total": 1500.0}),
        ],
        events=[
            {"name": "turn.llm", "turn_id": "t1", "at": 102.0,
             "fallbacks": [{"from": "llama", "to": "claude", "reason": "timeout"}]},
            {"name": "stage.takeover", "turn_id": "", "at": 110.0, "stage": "brain"},
        ],
    )
    view = call_view(record, "http://jaeger:16686/")
    call = view["call"]
    assert call["trace_url"] == "http://jaeger:16686/trace/" + "ab" * 16
    assert call["duration_s"] == 60.0 and call["cost"] == pytest.approx(0.0123)
    assert call["median_total_ms"] == 1500.0
    by_id = {t["turn_id"]: t for t in view["turns"]}
    labels = [m["label"] for m in by_id["t1"]["marks"]]
    assert "barge-in (180 ms)" in labels and "llm: llama -> claude (timeout)" in labels
    assert by_id["t1"]["cost"] == pytest.approx(0.0123) and by_id["t1"]["total_ms"] == 973.0
    assert [m["kind"] for m in by_id["t2"]["marks"]] == ["paused", "takeover"]  # the first turn after it
    assert by_id["u1"]["waterfall"] == [] and by_id["u1"]["at_s"] == 1.0
    assert view["marks"][0]["name"] == "stage.takeover" and view["marks"][0]["at_s"] == 10.0
    assert call_view(record)["call"]["trace_url"] == ""  # no Jaeger configured: no link


# -------------------------------------------------------------------- past-call search


def test_past_calls_match_by_agent_by_any_part_of_either_number_and_by_day() -> None:
    record = CallRecord(call_id="CA1", agent_id="sales", caller="+1 (555) 000-1111", callee="+15550002222",
                        started_at=1000.0)
    assert matches(record, CallListRequest())
    assert matches(record, CallListRequest(number="5550001111")) and matches(record, CallListRequest(number="0002"))
    assert not matches(record, CallListRequest(number="999"))
    assert matches(record, CallListRequest(agent_id="sales")) and not matches(record, CallListRequest(agent_id="x"))
    assert matches(record, CallListRequest(since=1000.0, until=1001.0))
    assert not matches(record, CallListRequest(since=1000.5)) and not matches(record, CallListRequest(until=1000.0))
    browser = CallRecord(call_id="BR1", caller="browser", started_at=1.0)
    assert matches(browser, CallListRequest(number="brow"))
