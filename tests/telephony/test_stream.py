"""The Media Streams socket loop against the in-memory broker, as a phone line would see it."""

from __future__ import annotations

import base64

import pytest

from ringline.contracts import subjects
from ringline.contracts.messages import Control, make_mark
from ringline.contracts.runtime import setup_telemetry

pytestmark = pytest.mark.service

CALL = "CA" + "0123456789abcdef" * 2
AUDIO_IN = subjects.audio_in(CALL)


@pytest.fixture
def tracing() -> None:
    setup_telemetry("telephony-test", None)  # a real (non-exporting) tracer provider


def test_call_start_carries_custom_parameters_and_trace(tracing, edge, tw) -> None:
    ws = tw.open_call(edge)
    (start,) = edge.on(subjects.CALLS_START)
    assert start["call_id"] == CALL
    assert start["agent_id"] == "sales"
    assert (start["caller"], start["callee"]) == ("+15550001111", "+15550002222")
    assert start["stream_sid"] == tw.STREAM_SID
    assert start["account_sid"] == tw.ACCOUNT_SID
    assert start["custom"]["call_sid"] == CALL
    # the call's root span travels with the start, so every stage joins the same trace
    headers = [h for subject, h in edge.headers if subject == subjects.CALLS_START]
    assert headers and "traceparent" in headers[0]
    ws.send_json(tw.stop(seq=9))
    edge.wait_for(subjects.CALLS_END)
    ws.__exit__(None, None, None)


def test_media_before_start_is_buffered_then_published_in_order(edge, tw) -> None:
    ws = tw.open_call(edge, early_media=3)
    frames = edge.wait_for(AUDIO_IN, 3)
    assert [f["seq"] for f in frames] == [2, 3, 4]
    assert [f["payload"] for f in frames] == [bytes([i]) * 160 for i in range(3)]
    ws.send_json(tw.media(seq=5, chunk=4, payload=b"\x10" * 160))
    frames = edge.wait_for(AUDIO_IN, 4)
    assert frames[3]["seq"] == 5 and frames[3]["payload"] == b"\x10" * 160
    assert frames[0]["captured_at"] <= frames[3]["captured_at"]
    ws.__exit__(None, None, None)


def test_agent_audio_becomes_160_byte_media_frames_then_the_mark(edge, tw) -> None:
    ws = tw.open_call(edge)
    name = make_mark("t1", 0)
    edge.publish(tw.agent_audio("t1", 0, b"\x01" * 400, mark=name, speech_ended_at=100.0, first_audio_at=100.5),
                 subjects.audio_out(CALL))
    sent = [tw.receive_json(ws) for _ in range(4)]
    assert [m["event"] for m in sent] == ["media", "media", "media", "mark"]
    payloads = [base64.b64decode(m["media"]["payload"]) for m in sent[:3]]
    assert all(len(p) == 160 for p in payloads)
    assert b"".join(payloads) == b"\x01" * 400 + b"\xff" * 80  # the tail padded with mu-law silence
    assert all(m["streamSid"] == tw.STREAM_SID for m in sent)
    assert sent[3]["mark"]["name"] == name
    # the first audio of the turn is reported once, with the edge's send time stamped in
    (event,) = edge.wait_for(subjects.event(CALL))
    assert event["name"] == "turn.first_audio" and event["turn_id"] == "t1"
    assert event["timing"]["speech_ended_at"] == 100.0 and event["timing"]["edge_sent_at"] > 100.5
    edge.publish(tw.agent_audio("t1", 1, b"\x02" * 160), subjects.audio_out(CALL))
    assert tw.receive_json(ws)["event"] == "media"
    tw.nothing_sent(ws)
    assert len(edge.on(subjects.event(CALL))) == 1
    ws.__exit__(None, None, None)


def test_odd_sized_pieces_are_joined_without_gaps(edge, tw) -> None:
    ws = tw.open_call(edge)
    edge.publish(tw.agent_audio("t1", 0, b"\x01" * 100), subjects.audio_out(CALL))
    tw.nothing_sent(ws, 0.1)  # less than one frame: held until more comes
    edge.publish(tw.agent_audio("t1", 1, b"\x02" * 100, mark="t1:1"), subjects.audio_out(CALL))
    sent = [tw.receive_json(ws) for _ in range(3)]
    assert [m["event"] for m in sent] == ["media", "media", "mark"]
    data = b"".join(base64.b64decode(m["media"]["payload"]) for m in sent[:2])
    assert data == b"\x01" * 100 + b"\x02" * 100 + b"\xff" * 120
    ws.__exit__(None, None, None)


def test_echoed_mark_becomes_playback(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.send_json(tw.mark(make_mark("turn-7", 3), seq=5))
    (playback,) = edge.wait_for(subjects.playback(CALL))
    assert playback["mark"] == "turn-7:3" and playback["turn_id"] == "turn-7"
    ws.send_json(tw.mark("someone-elses-mark", seq=6))
    assert edge.wait_for(subjects.playback(CALL), 2)[1]["turn_id"] == ""
    ws.__exit__(None, None, None)


def test_interrupt_clears_and_drops_later_audio_of_that_turn(edge, tw) -> None:
    ws = tw.open_call(edge)
    edge.publish(tw.agent_audio("t1", 0, b"\x01" * 160), subjects.audio_out(CALL))
    assert tw.receive_json(ws)["event"] == "media"
    edge.publish(Control(call_id=CALL, action="interrupt", turn_id="t1"), subjects.control(CALL))
    assert tw.receive_json(ws) == {"event": "clear", "streamSid": tw.STREAM_SID}
    edge.publish(tw.agent_audio("t1", 1, b"\x01" * 320, mark="t1:1"), subjects.audio_out(CALL))
    tw.nothing_sent(ws)
    # the next turn plays normally
    edge.publish(tw.agent_audio("t2", 0, b"\x03" * 160, mark="t2:0"), subjects.audio_out(CALL))
    assert [tw.receive_json(ws)["event"] for _ in range(2)] == ["media", "mark"]
    ws.__exit__(None, None, None)


def test_dtmf_goes_out_as_control(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.send_json(tw.dtmf("5", seq=4))
    controls = edge.wait_for(subjects.control(CALL))
    assert controls[0]["action"] == "dtmf" and controls[0]["digit"] == "5"
    ws.__exit__(None, None, None)


def test_hangup_closes_the_socket_and_ends_the_call(edge, tw) -> None:
    ws = tw.open_call(edge)
    edge.publish(Control(call_id=CALL, action="hangup", reason="goodbye said"), subjects.control(CALL))
    assert tw.receive(ws) == {"close": 1000, "reason": "agent hung up"}
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == "agent hung up"
    ws.__exit__(None, None, None)


def test_stop_publishes_call_end_once_and_ended_control(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.send_json(tw.stop(seq=3))
    assert tw.receive(ws)["close"] == 1000
    ws.__exit__(None, None, None)  # the client's disconnect must not end the call a second time
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["call_id"] == CALL and end["reason"] == "caller hung up"
    assert [c["action"] for c in edge.on(subjects.control(CALL))] == ["ended"]
    assert len(edge.on(subjects.CALLS_END)) == 1
    assert not edge.client.app.state.registry.calls
    # after the end, agent audio of that call goes nowhere
    edge.publish(tw.agent_audio("t9", 0, b"\x01" * 160), subjects.audio_out(CALL))


def test_disconnect_without_stop_ends_the_call(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.close(1006)
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == "connection lost (1006)"
    ws.__exit__(None, None, None)
    assert len(edge.on(subjects.CALLS_END)) == 1


def test_oversize_message_closes_with_1009(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.send_text('{"event":"media","pad":"' + "x" * (65 * 1024) + '"}')
    assert tw.receive(ws)["close"] == 1009
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert "too big" in end["reason"]
    ws.__exit__(None, None, None)


def test_malformed_messages_are_skipped_and_the_call_continues(edge, tw) -> None:
    ws = tw.open_call(edge)
    ws.send_text("{not json")
    ws.send_json({"event": "bogus"})
    ws.send_json({"event": "media", "sequenceNumber": "2", "media": {"payload": "!!not base64!!"}})
    ws.send_json(tw.media(seq=3, chunk=1))
    (frame,) = edge.wait_for(AUDIO_IN)
    assert frame["seq"] == 3
    assert not edge.on(subjects.CALLS_END)
    ws.__exit__(None, None, None)


def test_too_many_malformed_messages_close_with_1008(edge, tw) -> None:
    ws = tw.open_call(edge)
    for _ in range(5):  # max_malformed=5 in the test settings
        ws.send_text("][")
    assert tw.receive(ws)["close"] == 1008
    edge.wait_for(subjects.CALLS_END)
    ws.__exit__(None, None, None)


def test_one_bad_call_does_not_disturb_another(edge, tw) -> None:
    other = "CA" + "ab" * 16
    good = tw.open_call(edge)
    bad = edge.client.websocket_connect("/twilio/stream").__enter__()
    bad.send_json(tw.start(call_sid=other, seq=1))
    edge.wait_for(subjects.CALLS_START, 2)
    bad.send_text("x" * (70 * 1024))
    assert tw.receive(bad)["close"] == 1009
    good.send_json(tw.media(seq=2, chunk=1))
    assert edge.wait_for(AUDIO_IN)[0]["call_id"] == CALL
    edge.publish(tw.agent_audio("t1", 0, b"\x01" * 160), subjects.audio_out(CALL))
    assert tw.receive_json(good)["event"] == "media"
    assert [e["call_id"] for e in edge.on(subjects.CALLS_END)] == [other]
    bad.__exit__(None, None, None)
    good.__exit__(None, None, None)


def test_a_second_stream_for_a_live_call_is_refused(edge, tw) -> None:
    ws = tw.open_call(edge)
    dup = edge.client.websocket_connect("/twilio/stream").__enter__()
    dup.send_json(tw.start(seq=1))
    assert tw.receive(dup)["close"] == 1008
    assert len(edge.on(subjects.CALLS_START)) == 1 and not edge.on(subjects.CALLS_END)
    dup.__exit__(None, None, None)
    ws.__exit__(None, None, None)


def test_invalid_call_sid_is_refused(edge, tw) -> None:
    ws = edge.client.websocket_connect("/twilio/stream").__enter__()
    ws.send_json(tw.start(call_sid="CA.bad.subject", seq=1))
    assert tw.receive(ws)["close"] == 1008
    assert not edge.on(subjects.CALLS_START)
    ws.__exit__(None, None, None)


def test_shutdown_ends_live_calls(edge, tw) -> None:
    ws = tw.open_call(edge)
    # what the lifespan does on shutdown, before the broker stops (TestClient cannot leave its
    # context while a socket is open, so the step is driven directly)
    registry = edge.client.app.state.registry
    edge.client.portal.call(registry.shutdown, 5.0)
    assert tw.receive(ws) == {"close": 1001, "reason": "service shutting down"}
    assert [e["reason"] for e in edge.on(subjects.CALLS_END)] == ["service shutting down"]
    assert not registry.streams
    ws.__exit__(None, None, None)


def test_health_reports_the_bus(edge) -> None:
    response = edge.client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
