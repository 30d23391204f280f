"""A call no replica has room for: the caller hears the busy line within two seconds, then the
call ends, and it is on the record. A refusal that another replica makes good is not busy.

The edge renders the line with the local Piper voice at start-up (hence the integration tier).
"""

from __future__ import annotations

import base64
import time

import pytest

from ringline.contracts import subjects
from ringline.contracts.events import CALL_BUSY, CALL_REFUSED, STAGE_READY
from ringline.contracts.messages import CallEvent

pytestmark = pytest.mark.integration

CALL = "CA" + "0123456789abcdef" * 2


def wait_for_busy_line(edge) -> float:
    """Seconds of busy line the edge rendered at start-up."""
    line = edge.client.app.state.registry.busy_line
    deadline = time.monotonic() + 60
    while not line.audio:
        assert time.monotonic() < deadline, "the busy line was never rendered"
        time.sleep(0.05)
    return line.seconds


def test_a_stage_with_no_room_gets_the_caller_a_busy_line_not_silence(edge, tw) -> None:
    seconds = wait_for_busy_line(edge)
    assert 2.0 < seconds < 10.0
    ws = tw.open_call(edge)
    refused_at = time.monotonic()
    edge.publish(CallEvent(call_id=CALL, name=CALL_REFUSED, data={"stage": "stt", "replica": "stt-a",
                                                                  "reason": "at max_calls 1"}),
                 subjects.event(CALL))
    first = tw.receive_json(ws, timeout=3.0)
    heard_after = time.monotonic() - refused_at
    assert first["event"] == "media" and heard_after < 2.0
    audio = base64.b64decode(first["media"]["payload"])
    frames = 1
    while True:
        got = tw.receive(ws, timeout=seconds + 3.0)
        if "close" in got:
            break
        if got["json"]["event"] == "media":
            audio += base64.b64decode(got["json"]["media"]["payload"])
            frames += 1
    assert got == {"close": 1000, "reason": "busy"}
    assert len(audio) / 8000 == pytest.approx(seconds, abs=0.05)  # all of it, not cut short
    assert len(set(audio)) > 20  # speech, not silence
    busy = [e for e in edge.wait_for(subjects.event(CALL)) if e["name"] == CALL_BUSY]
    assert busy and busy[0]["data"]["stage"] == "stt" and busy[0]["data"]["reason"] == "at max_calls 1"
    end = edge.wait_for(subjects.CALLS_END)[0]
    assert end["call_id"] == CALL and end["reason"].startswith("busy: no stt capacity")
    ws.__exit__(None, None, None)


def test_a_refusal_another_replica_makes_good_is_not_busy(edge, tw) -> None:
    wait_for_busy_line(edge)
    ws = tw.open_call(edge)
    edge.publish(CallEvent(call_id=CALL, name=CALL_REFUSED, data={"stage": "tts", "replica": "tts-a",
                                                                  "reason": "loop lag 0.31 s"}),
                 subjects.event(CALL))
    for stage in ("tts", "stt", "brain", "memory"):  # another tts replica claimed it, and the other stages
        edge.publish(CallEvent(call_id=CALL, name=STAGE_READY, data={"stage": stage, "replica": f"{stage}-b"}),
                     subjects.event(CALL))
    assert tw.nothing_sent(ws, within=1.5)
    assert not [e for e in edge.on(subjects.event(CALL)) if e["name"] == CALL_BUSY]
    assert not edge.on(subjects.CALLS_END)
    ws.__exit__(None, None, None)
