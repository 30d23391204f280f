"""No call waits on nobody: a call that no replica of some stage has claimed hears the hold line
after `hold_after_s`, then an apology and a hang-up after `hold_give_up_s`, all on the record;
a call whose stages all claim it in time hears nothing from the edge.

The edge renders its lines with the local Piper voice at start-up (hence the integration tier).
"""

from __future__ import annotations

import base64
import time

import pytest

from ringline.contracts import subjects
from ringline.contracts.events import CALL_HOLD, STAGE_READY
from ringline.contracts.messages import CallEvent
from ringline.services.telephony.settings import TelephonySettings

pytestmark = pytest.mark.integration

CALL = "CA" + "0123456789abcdef" * 2


@pytest.fixture
def settings() -> TelephonySettings:
    return TelephonySettings(public_url="https://edge.example.com", hold_after_s=1.0, hold_give_up_s=4.0)


def wait_rendered(edge) -> tuple[float, float]:
    hold, sorry = edge.client.app.state.registry.hold_lines
    deadline = time.monotonic() + 90
    while not (hold.audio and sorry.audio):
        assert time.monotonic() < deadline, "the hold lines were never rendered"
        time.sleep(0.05)
    return hold.seconds, sorry.seconds


def test_a_stage_nobody_claims_gets_the_hold_line_then_an_apology_and_the_call_ends(edge, tw) -> None:
    hold_s, sorry_s = wait_rendered(edge)
    ws = tw.open_call(edge)
    opened = time.monotonic()
    for stage in ("stt", "tts", "memory"):  # every brain replica is still loading its model
        edge.publish(CallEvent(call_id=CALL, name=STAGE_READY, data={"stage": stage, "replica": f"{stage}-1"}),
                     subjects.event(CALL))
    first = tw.receive_json(ws, timeout=4.0)
    assert first["event"] == "media" and time.monotonic() - opened < 2.0
    audio = base64.b64decode(first["media"]["payload"])
    while True:
        got = tw.receive(ws, timeout=hold_s + sorry_s + 6.0)
        if "close" in got:
            break
        if got["json"]["event"] == "media":
            audio += base64.b64decode(got["json"]["media"]["payload"])
    assert len(audio) / 8000 == pytest.approx(hold_s + sorry_s, abs=0.1)  # the hold line, then the apology
    holds = [e for e in edge.wait_for(subjects.event(CALL)) if e["name"] == CALL_HOLD]
    assert holds[0]["data"]["stages"] == ["brain"]
    end = edge.wait_for(subjects.CALLS_END)[0]
    assert end["reason"] == "no brain replica claimed the call"
    ws.__exit__(None, None, None)


def test_a_call_every_stage_claims_hears_nothing_from_the_edge(edge, tw) -> None:
    wait_rendered(edge)
    ws = tw.open_call(edge)
    for stage in ("stt", "brain", "tts", "memory"):
        edge.publish(CallEvent(call_id=CALL, name=STAGE_READY, data={"stage": stage, "replica": f"{stage}-1"}),
                     subjects.event(CALL))
    assert tw.nothing_sent(ws, within=2.0)
    assert not [e for e in edge.on(subjects.event(CALL)) if e["name"] == CALL_HOLD]
    ws.__exit__(None, None, None)
