"""The softphone and dashboard endpoints on the in-memory broker: pages, the token, a browser call
through the Media Streams socket, past calls from a stand-in memory service, and the live feed."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from faststream.nats import TestNatsBroker
from faststream.nats.annotations import NatsMessage
from pydantic import SecretStr
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from ringline.contracts import subjects
from ringline.contracts.messages import (
    CallEnd,
    CallEvent,
    CallGetReply,
    CallGetRequest,
    CallListRequest,
    CallRecord,
    CallStart,
    CallSummary,
    ReplyChunk,
    Transcript,
    TurnRecord,
)
from ringline.contracts.messages.voicemail import AudioReply, AudioRequest
from ringline.contracts.runtime import create_broker
from ringline.services.telephony.app import create_app
from ringline.services.telephony.dashboard_api import event_stream
from ringline.services.telephony.live_feed import LiveFeed, Watcher
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.service

TOKEN = "correct-horse-battery"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BROWSER_CALL = "BR" + "0123456789abcdef" * 2
VOICEMAIL = b"RIFF" + bytes(range(256)) * 10  # 2,564 bytes: three pieces
RECORD = CallRecord(
    call_id="CA1", agent_id="sales", caller="+15550001111", started_at=1000.0, ended_at=1030.0,
    end_reason="caller hung up", trace_id="cd" * 16,
    turns=[TurnRecord(turn_id="t1", speaker="agent", text="Hello!", started_at=1001.0,
                      latency_ms={"stt": 200.0, "brain": 500.0, "tts": 100.0, "edge": 2.0, "total": 802.0})],
)


class Harness:
    def __init__(self, client: TestClient, broker: Any, asked: list[Any], seen: list[tuple[str, dict]]) -> None:
        self.client, self.broker, self.asked, self.seen = client, broker, asked, seen

    def wait_for(self, subject: str, timeout: float = 3.0) -> dict:
        for _ in range(int(timeout / 0.01)):
            found = [body for subj, body in self.seen if subj == subject]
            if found:
                return found[0]
            asyncio.run(asyncio.sleep(0.01))
        raise AssertionError(f"nothing on {subject}")


def _edge(settings: TelephonySettings, memory: bool = True) -> Iterator[Harness]:
    broker = create_broker(settings, "telephony")
    asked: list[Any] = []
    seen: list[tuple[str, dict]] = []

    if memory:
        @broker.subscriber(subjects.MEMORY_CALLS_LIST)
        async def list_calls(request: CallListRequest) -> list[CallSummary]:
            asked.append(request)
            return [CallSummary(call_id="CA1", agent_id="sales", caller="+15550001111", started_at=1000.0,
                                ended_at=1030.0, turns=1, end_reason="caller hung up")]

        @broker.subscriber(subjects.MEMORY_VOICEMAIL_GET)
        async def voicemail(request: AudioRequest) -> AudioReply:  # in 1 KB pieces, as a long message comes
            if request.call_id != RECORD.call_id:
                return AudioReply(found=False, error="no voicemail")
            piece = VOICEMAIL[request.offset:request.offset + 1024]
            return AudioReply(found=True, total_bytes=len(VOICEMAIL), offset=request.offset, data=piece)

        @broker.subscriber(subjects.MEMORY_CALLS_GET)
        async def get_call(request: CallGetRequest) -> CallGetReply:
            found = request.call_id == RECORD.call_id
            return CallGetReply(found=found, record=RECORD if found else None)

    @broker.subscriber("calls.start")
    @broker.subscriber("call.*.playback")
    async def record(body: dict, msg: NatsMessage) -> None:
        seen.append((msg.raw_message.subject, body))

    app = create_app(settings, broker=broker, run_broker=TestNatsBroker)
    with TestClient(app) as client:
        yield Harness(client, broker, asked, seen)


@pytest.fixture
def web(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    settings = TelephonySettings(public_url="https://edge.example.com", web_token=SecretStr(TOKEN),
                                 jaeger_ui_url="http://jaeger.example:16686")
    yield from _edge(settings)


def test_the_pages_and_their_assets_are_served(web: Harness) -> None:
    for path, needle in (("/phone", "softphone"), ("/dashboard", "Live calls"), ("/dashboard/calls/CA1", "waterfall")):
        response = web.client.get(path)
        assert response.status_code == 200 and needle in response.text, path
    script = web.client.get("/web/player-worklet.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert web.client.get("/web/settings.py").status_code == 404
    assert web.client.get("/web/..%2Fsettings.py").status_code == 404


def test_the_api_wants_the_token(web: Harness) -> None:
    assert web.client.get("/phone/agents").status_code == 401
    assert web.client.get("/phone/agents", headers={"Authorization": "Bearer wrong"}).status_code == 401
    agents = web.client.get("/phone/agents", headers=AUTH)
    assert agents.status_code == 200 and agents.json()["agents"][0]["id"] == "default"
    assert web.client.get(f"/dashboard/api/calls?token={TOKEN}").status_code == 200


def test_an_exposed_edge_without_a_token_refuses_the_softphone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    for harness in _edge(TelephonySettings(public_url="https://edge.example.com"), memory=False):
        response = harness.client.get("/phone/agents")
        assert response.status_code == 403 and "RINGLINE_TELEPHONY_WEB_TOKEN" in response.json()["detail"]
        with harness.client.websocket_connect("/phone/stream") as ws, pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1008


def _start(call_sid: str = BROWSER_CALL) -> dict[str, Any]:
    return {"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "streamSid": "MZ1", "callSid": call_sid, "accountSid": "", "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
        "customParameters": {"agent": "default", "caller": "browser", "callee": "", "client": "browser"}}}


def test_a_browser_call_runs_over_the_media_streams_socket(web: Harness) -> None:
    from ringline.contracts.messages import AgentAudio

    with web.client.websocket_connect(f"/phone/stream?token={TOKEN}") as ws:
        ws.send_json({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        ws.send_json(_start())
        start = web.wait_for(subjects.CALLS_START)
        assert (start["call_id"], start["agent_id"], start["caller"]) == (BROWSER_CALL, "default", "browser")
        audio = AgentAudio(call_id=BROWSER_CALL, turn_id="t1", seq=0, payload=b"\x7f" * 320, mark="t1:0", final=True)
        web.client.portal.call(web.broker.publish, audio, subjects.audio_out(BROWSER_CALL))
        sent = [json.loads(ws.receive_text()) for _ in range(2)]
        assert [m["event"] for m in sent] == ["media", "mark"]  # 40 ms: one message (media_message_ms)
        assert base64.b64decode(sent[0]["media"]["payload"]) == b"\x7f" * 320
        ws.send_json({"event": "mark", "sequenceNumber": "2", "streamSid": "MZ1", "mark": {"name": "t1:0"}})
        heard = web.wait_for(subjects.playback(BROWSER_CALL))
        assert heard["mark"] == "t1:0" and heard["cleared"] is False


def test_a_softphone_socket_without_the_token_or_from_another_site_is_closed(web: Harness) -> None:
    with web.client.websocket_connect("/phone/stream") as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (1008, "invalid token")
    with web.client.websocket_connect(f"/phone/stream?token={TOKEN}", headers={"Origin": "https://evil.example"}) \
            as ws, pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 1008


def test_past_calls_are_searched_at_the_memory_service(web: Harness) -> None:
    found = web.client.get("/dashboard/api/calls?number=555 0001&agent=sales&since=900&until=2000", headers=AUTH)
    assert found.status_code == 200 and found.json()["calls"][0]["call_id"] == "CA1"
    asked = web.asked[-1]
    assert (asked.number, asked.agent_id, asked.since, asked.until) == ("555 0001", "sales", 900.0, 2000.0)


def test_a_call_page_gets_its_waterfall_and_trace_link(web: Harness) -> None:
    view = web.client.get("/dashboard/api/calls/CA1", headers=AUTH).json()
    assert view["call"]["trace_url"] == "http://jaeger.example:16686/trace/" + "cd" * 16
    assert [b["stage"] for b in view["turns"][0]["waterfall"]] == ["stt", "brain", "tts", "edge"]
    assert web.client.get("/dashboard/api/calls/CA2", headers=AUTH).status_code == 404
    assert web.client.get("/dashboard/api/calls/not.a.call", headers=AUTH).status_code == 400


def test_a_voicemail_plays_from_the_pieces_the_memory_service_sends(web: Harness) -> None:
    wav = web.client.get(f"/dashboard/api/calls/CA1/voicemail.wav?token={TOKEN}")  # an <audio> src
    assert wav.status_code == 200 and wav.headers["content-type"] == "audio/wav" and wav.content == VOICEMAIL
    assert web.client.get("/dashboard/api/calls/CA2/voicemail.wav", headers=AUTH).status_code == 404


def test_without_a_memory_service_the_dashboard_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    settings = TelephonySettings(public_url="https://edge.example.com", web_token=SecretStr(TOKEN))
    for harness in _edge(settings, memory=False):
        response = harness.client.get("/dashboard/api/calls/CA1", headers=AUTH)
        assert response.status_code == 503 and "memory" in response.json()["detail"]


# ------------------------------------------------------------------------------- live feed


async def _next(watcher: Watcher) -> dict[str, Any]:
    update = await asyncio.wait_for(watcher.queue.get(), 2.0)
    assert update is not None
    return update


async def test_the_live_feed_carries_a_calls_words_and_state_while_someone_watches() -> None:
    broker = create_broker(TelephonySettings(), "telephony")
    feed = LiveFeed(broker)
    async with TestNatsBroker(broker) as bus:
        async with feed.watch() as listing, feed.watch("CA1") as one, feed.watch("CA2") as other:
            assert feed.watching
            await bus.publish(CallStart(call_id="CA1", agent_id="sales", caller="+1555"), subjects.CALLS_START)
            assert (await _next(listing))["call"]["state"] == "connecting"
            assert (await _next(one))["call"]["caller"] == "+1555"
            await bus.publish(ReplyChunk(call_id="CA1", turn_id="t0", seq=0, text="Hi there.", final=True),
                              subjects.reply("CA1"))
            assert (await _next(one))["text"] == "Hi there."
            await bus.publish(Transcript(call_id="CA1", utterance_id="u1", text="What time is it?"),
                              subjects.transcript("CA1"))
            state, words = await _next(one), await _next(one)
            assert state["call"]["state"] == "thinking" and words["text"] == "What time is it?"
            assert (await _next(listing))["call"]["state"] == "thinking"  # the list gets state, not words
            await bus.publish(CallEvent(call_id="CA1", name="turn.paused", turn_id="t1"), subjects.event("CA1"))
            assert (await _next(one))["call"]["state"] == "paused"
            assert (await _next(one))["name"] == "turn.paused"
            assert (await _next(listing))["call"]["state"] == "paused"
            await bus.publish(CallEnd(call_id="CA1"), subjects.CALLS_END)
            assert (await _next(listing))["call"]["state"] == "ended"
            assert other.queue.empty()  # another call's viewer heard nothing of this one
        assert not feed.watching  # the last viewer left: per-call subjects are dropped


async def test_an_event_stream_says_hello_first_then_keeps_the_connection_alive(monkeypatch) -> None:
    import ringline.services.telephony.dashboard_api as api

    monkeypatch.setattr(api, "KEEPALIVE_S", 0.05)
    monkeypatch.setattr(api, "CHECK_S", 0.05)
    watcher = Watcher(None)
    stream = event_stream([{"type": "snapshot", "calls": []}], watcher)
    assert await anext(stream) == 'data: {"type":"hello"}\n\n'
    assert json.loads((await anext(stream))[6:]) == {"type": "snapshot", "calls": []}
    assert await anext(stream) == ": keep-alive\n\n"
    watcher.put({"type": "call", "call": {"call_id": "CA1"}})
    assert "CA1" in await anext(stream)
    watcher.queue.put_nowait(None)  # fell behind: the stream ends, the browser reconnects
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_an_event_stream_ends_when_the_edge_drains(monkeypatch) -> None:
    import ringline.services.telephony.dashboard_api as api

    monkeypatch.setattr(api, "CHECK_S", 0.05)
    draining = False
    stream = event_stream([], Watcher(None), lambda: draining)
    assert await anext(stream) == 'data: {"type":"hello"}\n\n'
    draining = True  # SIGTERM: an open dashboard must not hold the shutdown up
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), 1.0)
