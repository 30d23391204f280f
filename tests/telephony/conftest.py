"""Shared pieces of the telephony tests: real-shaped Twilio messages and an edge harness.

The harness runs the FastAPI app under Starlette's TestClient (its own event loop in a thread)
with FastStream's in-memory broker. Everything touching the broker runs on that loop through
`client.portal`; socket reads have timeouts so a missing message fails the test, never hangs it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from faststream.nats import TestNatsBroker
from faststream.nats.annotations import NatsMessage
from starlette.testclient import TestClient, WebSocketTestSession

from ringline.contracts import subjects
from ringline.contracts.messages import AgentAudio, TurnTiming
from ringline.contracts.runtime import create_broker
from ringline.services.telephony.app import create_app
from ringline.services.telephony.settings import TelephonySettings

CALL_SID = "CA" + "0123456789abcdef" * 2
ACCOUNT_SID = "AC" + "fedcba9876543210" * 2
STREAM_SID = "MZ" + "00112233445566778899aabbccddeeff"


# ---------------------------------------------------------------- Twilio-shaped messages


def connected() -> dict[str, Any]:
    return {"event": "connected", "protocol": "Call", "version": "1.0.0"}


def start(call_sid: str = CALL_SID, custom: dict[str, str] | None = None, seq: int = 1,
          fmt: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "event": "start",
        "sequenceNumber": str(seq),
        "start": {
            "accountSid": ACCOUNT_SID,
            "streamSid": STREAM_SID,
            "callSid": call_sid,
            "tracks": ["inbound"],
            "mediaFormat": fmt or {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
            "customParameters": custom if custom is not None else
            {"agent": "sales", "caller": "+15550001111", "callee": "+15550002222", "call_sid": call_sid},
        },
        "streamSid": STREAM_SID,
    }


def media(seq: int, chunk: int, payload: bytes = b"\x7f" * 160) -> dict[str, Any]:
    return {
        "event": "media",
        "sequenceNumber": str(seq),
        "media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(chunk * 20),
                  "payload": base64.b64encode(payload).decode()},
        "streamSid": STREAM_SID,
    }


def mark(name: str, seq: int) -> dict[str, Any]:
    return {"event": "mark", "sequenceNumber": str(seq), "streamSid": STREAM_SID, "mark": {"name": name}}


def dtmf(digit: str, seq: int) -> dict[str, Any]:
    return {"event": "dtmf", "streamSid": STREAM_SID, "sequenceNumber": str(seq),
            "dtmf": {"track": "inbound_track", "digit": digit}}


def stop(seq: int, call_sid: str = CALL_SID) -> dict[str, Any]:
    return {"event": "stop", "sequenceNumber": str(seq), "streamSid": STREAM_SID,
            "stop": {"accountSid": ACCOUNT_SID, "callSid": call_sid}}


def agent_audio(turn: str, seq: int, payload: bytes, mark: str | None = None, final: bool = False,
                **timing: float) -> AgentAudio:
    """A piece of agent turn `turn` on its way to the caller (what TTS publishes)."""
    return AgentAudio(call_id=CALL_SID, turn_id=turn, seq=seq, payload=payload, mark=mark, final=final,
                      timing=TurnTiming(**timing))


# ----------------------------------------------------------------------------- harness


@dataclass
class Edge:
    client: TestClient
    broker: Any
    seen: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, message: Any, subject: str) -> None:
        self.client.portal.call(self.broker.publish, message, subject)

    def on(self, subject: str) -> list[dict[str, Any]]:
        with self.lock:
            return [body for subj, body in self.seen if subj == subject]

    def wait_for(self, subject: str, count: int = 1, timeout: float = 3.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(subject)
            if len(got) >= count:
                return got
            time.sleep(0.01)
        raise AssertionError(f"{len(self.on(subject))} of {count} messages on {subject} after {timeout}s")


def receive(ws: WebSocketTestSession, timeout: float = 3.0) -> dict[str, Any]:
    """The next message the edge sent: {"json": ...} or {"close": code, "reason": ...}."""

    async def _next() -> dict[str, Any]:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    message = ws.portal.call(_next)
    if message["type"] == "websocket.close":
        return {"close": message.get("code", 1000), "reason": message.get("reason", "")}
    return {"json": json.loads(message["text"])}


def receive_json(ws: WebSocketTestSession, timeout: float = 3.0) -> dict[str, Any]:
    got = receive(ws, timeout)
    assert "json" in got, f"expected a message, the edge closed: {got}"
    return got["json"]


def nothing_sent(ws: WebSocketTestSession, within: float = 0.3) -> bool:
    try:
        got = receive(ws, within)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected message from the edge: {got}")


def receive_until_mark(ws: WebSocketTestSession, name: str) -> list[dict[str, Any]]:
    """What the edge sent up to and including mark `name`."""
    got = []
    while True:
        msg = receive_json(ws)
        got.append(msg)
        if msg["event"] == "mark" and msg["mark"]["name"] == name:
            return got


def open_call(edge: Edge, headers: dict[str, str] | None = None, early_media: int = 0) -> WebSocketTestSession:
    """Open a stream, send `connected` (+ early media) and `start`; wait for CallStart."""
    ws = edge.client.websocket_connect("/twilio/stream", headers=dict(headers or {})).__enter__()
    ws.send_json(connected())
    for i in range(early_media):
        ws.send_json(media(seq=2 + i, chunk=1 + i, payload=bytes([i]) * 160))
    ws.send_json(start(seq=1, custom=signed_custom(edge)))
    edge.wait_for(subjects.CALLS_START)
    return ws


def signed_custom(edge: Edge, call_sid: str = CALL_SID, **extra: str) -> dict[str, str]:
    """The stream's parameters as the edge's TwiML gives them, with the call's stream token."""
    token = edge.client.app.state.stream_tokens.issue(call_sid, time.time())
    return {"agent": "sales", "caller": "+15550001111", "callee": "+15550002222", "call_sid": call_sid,
            "stream_token": token, **extra}


def make_edge(settings: TelephonySettings) -> Iterator[Edge]:
    broker = create_broker(settings, "telephony")
    edge_holder: list[Edge] = []

    @broker.subscriber("calls.>")
    @broker.subscriber("call.>")
    async def record(body: dict, msg: NatsMessage) -> None:
        edge = edge_holder[0]
        with edge.lock:
            edge.seen.append((msg.raw_message.subject, body))
            edge.headers.append((msg.raw_message.subject, dict(msg.headers)))

    app = create_app(settings, broker=broker, run_broker=TestNatsBroker)
    with TestClient(app) as client:
        edge = Edge(client=client, broker=broker)
        edge_holder.append(edge)
        yield edge


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> TelephonySettings:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    # One 20 ms frame per media message, so tests can count frames in messages;
    # test_media_messages covers messages of several frames (the default).
    return TelephonySettings(public_url="https://edge.example.com", max_malformed=5, media_message_ms=20)


@pytest.fixture
def edge(settings: TelephonySettings) -> Iterator[Edge]:
    yield from make_edge(settings)


@pytest.fixture
def tw() -> SimpleNamespace:
    """Message factories and socket helpers (conftest helpers are not importable by tests)."""
    return SimpleNamespace(
        CALL_SID=CALL_SID, ACCOUNT_SID=ACCOUNT_SID, STREAM_SID=STREAM_SID,
        connected=connected, start=start, media=media, mark=mark, dtmf=dtmf, stop=stop, agent_audio=agent_audio,
        receive=receive, receive_json=receive_json, nothing_sent=nothing_sent, make_edge=make_edge,
        open_call=open_call, receive_until_mark=receive_until_mark, signed_custom=signed_custom,
    )
