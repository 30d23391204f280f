"""Barge-in and hang-up at the edge, as the phone line and the brain see them.

- an interrupt clears the phone's buffer; the marks the clear flushes come back as
  `Playback(cleared=True)` and the moment of the `clear` is on the call record (`edge.clear`);
- an agent hang-up completes the call through Twilio's REST API (a local server stands in for
  api.twilio.com, `doubles.twilio`) and closes the stream either way;
- a caller hanging up in the middle of a reply ends the call once, without error logs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator

import pytest
from twilio.request_validator import RequestValidator

from ringline.contracts import subjects
from ringline.contracts.messages import Control, make_mark
from ringline.services.telephony.outbox import Outbox
from ringline.services.telephony.playout import ClearSent, Playout
from ringline.services.telephony.settings import TelephonySettings

from doubles.twilio import TwilioApi

pytestmark = pytest.mark.service

CALL = "CA" + "0123456789abcdef" * 2
ACCOUNT = "AC" + "fedcba9876543210" * 2
TOKEN = "0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------------------- barge-in


def test_interrupt_clears_and_the_flushed_marks_come_back_as_not_heard(edge, tw) -> None:
    ws = tw.open_call(edge)
    edge.publish(tw.agent_audio("t1", 0, b"\x01" * 800, mark=make_mark("t1", 0)), subjects.audio_out(CALL))
    edge.publish(tw.agent_audio("t1", 1, b"\x01" * 800, mark=make_mark("t1", 1)), subjects.audio_out(CALL))
    tw.receive_until_mark(ws, "t1:1")
    # the phone played the first chunk and echoed its mark: heard
    ws.send_json(tw.mark("t1:0", seq=2))
    before_clear = time.time()
    edge.publish(Control(call_id=CALL, action="interrupt", turn_id="t1"), subjects.control(CALL))
    assert tw.receive_json(ws) == {"event": "clear", "streamSid": tw.STREAM_SID}
    # Twilio answers a clear by echoing the marks it had pending: not heard
    ws.send_json(tw.mark("t1:1", seq=3))
    playbacks = edge.wait_for(subjects.playback(CALL), 2)
    assert [(p["mark"], p["cleared"]) for p in playbacks] == [("t1:0", False), ("t1:1", True)]
    # the moment the clear went out is on the record, with the marks it flushed
    clear = next(e for e in edge.wait_for(subjects.event(CALL), 2) if e["name"] == "edge.clear")
    assert clear["turn_id"] == "t1" and clear["data"]["unheard_marks"] == ["t1:1"]
    assert before_clear <= clear["data"]["at"] <= time.time()
    # later audio of the interrupted turn never reaches the phone; the next turn plays and is heard
    edge.publish(tw.agent_audio("t1", 2, b"\x01" * 320, mark=make_mark("t1", 2), final=True),
                 subjects.audio_out(CALL))
    edge.publish(tw.agent_audio("t2", 0, b"\x03" * 160, mark=make_mark("t2", 0), final=True),
                 subjects.audio_out(CALL))
    sent = tw.receive_until_mark(ws, "t2:0")
    assert [m["event"] for m in sent] == ["media", "mark"]
    assert base64.b64decode(sent[0]["media"]["payload"]) == b"\x03" * 160
    ws.send_json(tw.mark("t2:0", seq=4))
    assert edge.wait_for(subjects.playback(CALL), 3)[2]["cleared"] is False
    ws.__exit__(None, None, None)


async def test_marks_still_queued_in_the_edge_are_dropped_with_their_audio(tw) -> None:
    """The outbox has not written turn t1 yet when the interrupt comes: nothing of it goes out,
    the clear goes first, and the dropped mark is never reported as heard or cleared."""
    sent: list[dict] = []
    clears: list[ClearSent] = []

    async def send(text: str) -> None:
        sent.append(json.loads(text))

    outbox = Outbox(send)
    playout = Playout(outbox, "MZ1", on_first_audio=lambda turn, timing: None, on_clear=clears.append)
    playout.audio(tw.agent_audio("t1", 0, b"\x01" * 480, mark="t1:0"))
    playout.audio(tw.agent_audio("t2", 0, b"\x02" * 160, mark="t2:0"))
    assert playout.pending_marks == 2
    assert playout.interrupt("t1") == 4  # three frames and the mark
    assert playout.pending_marks == 1
    writer = asyncio.create_task(outbox.run())
    while outbox.pending:
        await asyncio.sleep(0.01)
    outbox.close()
    await writer
    assert [m["event"] for m in sent] == ["clear", "media", "mark"]
    assert sent[2]["mark"]["name"] == "t2:0"
    (clear,) = clears
    assert clear.turn_id == "t1" and clear.dropped == 4 and clear.unheard_marks == ()
    assert playout.echoed("t2:0") == "heard"  # written after the clear: it plays, and is heard
    assert playout.echoed("t1:0") == "heard" and playout.pending_marks == 0


# ------------------------------------------------------------------------------- hang-up


@pytest.fixture
def twilio_api() -> Iterator[TwilioApi]:
    with TwilioApi() as api:
        yield api


def _signed_edge(tw, api_url: str):
    settings = TelephonySettings(public_url="https://edge.example.com", twilio_account_sid=ACCOUNT,
                                 twilio_auth_token=TOKEN, twilio_api_url=api_url, twilio_api_timeout_s=2.0)
    signature = RequestValidator(TOKEN).compute_signature("wss://edge.example.com/twilio/stream", {})
    return tw.make_edge(settings), {"X-Twilio-Signature": signature}


def test_agent_hangup_completes_the_call_through_twilio_then_closes(tw, twilio_api) -> None:
    edges, headers = _signed_edge(tw, twilio_api.url)
    edge = next(edges)
    ws = tw.open_call(edge, headers)
    edge.publish(Control(call_id=CALL, action="hangup", reason="goodbye heard"), subjects.control(CALL))
    assert tw.receive(ws) == {"close": 1000, "reason": "agent hung up"}
    (request,) = twilio_api.requests
    assert request["path"] == f"/2010-04-01/Accounts/{ACCOUNT}/Calls/{CALL}.json"
    assert request["form"] == {"Status": ["completed"]}
    assert base64.b64decode(request["auth"].removeprefix("Basic ")).decode() == f"{ACCOUNT}:{TOKEN}"
    (end,) = edge.wait_for(subjects.CALLS_END)
    assert end["reason"] == "agent hung up"
    ws.__exit__(None, None, None)
    edges.close()


def test_agent_hangup_still_closes_the_stream_when_twilio_refuses(tw, caplog) -> None:
    with TwilioApi(status=500) as api:
        edges, headers = _signed_edge(tw, api.url)
        edge = next(edges)
        ws = tw.open_call(edge, headers)
        with caplog.at_level(logging.WARNING, logger="ringline"):
            edge.publish(Control(call_id=CALL, action="hangup"), subjects.control(CALL))
            assert tw.receive(ws) == {"close": 1000, "reason": "agent hung up"}
        assert len(api.requests) == 1
        assert [e["reason"] for e in edge.wait_for(subjects.CALLS_END)] == ["agent hung up"]
        assert any("did not complete the call" in r.getMessage() for r in caplog.records)
        ws.__exit__(None, None, None)
        edges.close()


def test_without_credentials_a_hangup_only_closes_the_stream(edge, tw, twilio_api) -> None:
    ws = tw.open_call(edge)
    edge.publish(Control(call_id=CALL, action="hangup"), subjects.control(CALL))
    assert tw.receive(ws) == {"close": 1000, "reason": "agent hung up"}
    assert [e["reason"] for e in edge.wait_for(subjects.CALLS_END)] == ["agent hung up"]
    assert twilio_api.requests == []
    ws.__exit__(None, None, None)


def test_caller_hanging_up_mid_reply_ends_the_call_once_without_errors(edge, tw, caplog) -> None:
    with caplog.at_level(logging.WARNING):
        ws = tw.open_call(edge)
        edge.publish(tw.agent_audio("t1", 0, b"\x01" * 8000 * 5, mark="t1:0"), subjects.audio_out(CALL))
        assert tw.receive_json(ws)["event"] == "media"
        ws.send_json(tw.stop(seq=2))
        ws.__exit__(None, None, None)
        edge.wait_for(subjects.CALLS_END)
        # the rest of the reply, an interrupt and a hang-up arrive after the end: all ignored
        edge.publish(tw.agent_audio("t1", 1, b"\x01" * 1600, mark="t1:1", final=True), subjects.audio_out(CALL))
        edge.publish(Control(call_id=CALL, action="interrupt", turn_id="t1"), subjects.control(CALL))
        edge.publish(Control(call_id=CALL, action="hangup"), subjects.control(CALL))
        time.sleep(0.3)
    assert [e["reason"] for e in edge.on(subjects.CALLS_END)] == ["caller hung up"]
    assert [c["action"] for c in edge.on(subjects.control(CALL)) if c["action"] == "ended"] == ["ended"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
