"""Pause and resume at the edge, as the phone line and the brain see them.

- a pause clears the phone at once and holds the turn: nothing more of it is sent, even as TTS
  goes on; the echoes of its marks the clear flushed are no news to the brain (no `Playback`),
  while a turn that was not paused loses its flushed audio as after an interrupt;
- a resume plays the turn on from the chunk after its last heard mark, the very same frames,
  then the audio that came while paused, its marks renamed `turn~n:seq` for the n-th resume;
- an interrupt of a paused turn ends it for good.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import WebSocketTestSession

from ringline.contracts import subjects
from ringline.contracts.events import EDGE_CLEAR
from ringline.contracts.messages import Control, make_mark, parse_mark
from ringline.services.telephony.outbox import Outbox
from ringline.services.telephony.playout import ClearSent, Playout

pytestmark = pytest.mark.service


@pytest.fixture
def settings(settings):
    """Every pause here rewinds, as a long one does: the frames these tests send are "played" by the
    edge's estimate long before the test pauses. The short-pause rule is tested on `Playout` below."""
    return settings.model_copy(update={"resume_rewind_after_ms": 0.0})


@pytest.fixture
def ws(edge, tw) -> Iterator[WebSocketTestSession]:
    """The Media Streams socket of a started call, closed after the test even when it fails."""
    socket = tw.open_call(edge)
    yield socket
    socket.__exit__(None, None, None)


def say(edge, tw, turn: str, seq: int, frames: list[int], final: bool = False) -> None:
    """Chunk `seq` of `turn` from TTS: one 20 ms frame of byte `f` for each `f`, then its mark."""
    payload = b"".join(bytes([f]) * 160 for f in frames)
    edge.publish(tw.agent_audio(turn, seq, payload, mark=make_mark(turn, seq), final=final),
                 subjects.audio_out(tw.CALL_SID))


def control(edge, tw, action: str, turn: str) -> None:
    edge.publish(Control(call_id=tw.CALL_SID, action=action, turn_id=turn), subjects.control(tw.CALL_SID))


def frames(sent: list[dict[str, Any]]) -> list[int]:
    """The byte each media frame the phone got is made of."""
    return [base64.b64decode(m["media"]["payload"])[0] for m in sent if m["event"] == "media"]


def marks(sent: list[dict[str, Any]]) -> list[str]:
    return [m["mark"]["name"] for m in sent if m["event"] == "mark"]


def published_echoes(edge, tw, ws, names: list[str], seq: int) -> list[tuple[str, bool]]:
    """Echo `names` from the phone, then a sentinel mark: the Playbacks they were published as."""
    before = len(edge.on(subjects.playback(tw.CALL_SID)))
    for i, name in enumerate(names):
        ws.send_json(tw.mark(name, seq=seq + i))
    ws.send_json(tw.mark("sentinel", seq=seq + len(names)))
    published = edge.wait_for(subjects.playback(tw.CALL_SID), before + 1)[before:]
    while published[-1]["mark"] != "sentinel":
        published = edge.wait_for(subjects.playback(tw.CALL_SID), before + len(published) + 1)[before:]
    return [(p["mark"], p["cleared"]) for p in published[:-1]]


def clears(edge, tw, count: int = 1) -> list[dict[str, Any]]:
    """The `edge.clear` events on the call record, once there are `count` of them."""
    deadline = time.monotonic() + 3.0
    while len(got := [e for e in edge.on(subjects.event(tw.CALL_SID)) if e["name"] == EDGE_CLEAR]) < count:
        assert time.monotonic() < deadline, f"{len(got)} of {count} edge.clear events"
        time.sleep(0.01)
    return got


def test_pause_stops_the_turn_and_resume_replays_what_was_not_heard(edge, tw, ws) -> None:
    say(edge, tw, "t1", 0, [1, 2])
    say(edge, tw, "t1", 1, [3, 4, 5])
    first = tw.receive_until_mark(ws, "t1:1")
    assert published_echoes(edge, tw, ws, ["t1:0"], seq=2) == [("t1:0", False)]
    control(edge, tw, "pause", "t1")
    assert tw.receive_json(ws) == {"event": "clear", "streamSid": tw.STREAM_SID}
    # TTS goes on while the caller talks: the edge keeps it, the phone gets nothing
    say(edge, tw, "t1", 2, [6, 7], final=True)
    tw.nothing_sent(ws)
    (clear,) = clears(edge, tw)
    assert clear["turn_id"] == "t1" and clear["data"]["pause"] is True
    assert clear["data"]["unheard_marks"] == ["t1:1"]
    # Twilio echoes the mark the clear flushed: the turn is kept, so it is no news to the brain
    assert published_echoes(edge, tw, ws, ["t1:1"], seq=4) == []

    control(edge, tw, "resume", "t1")
    replay = tw.receive_until_mark(ws, "t1~1:2")
    assert [m["event"] for m in replay] == ["media"] * 3 + ["mark"] + ["media"] * 2 + ["mark"]
    assert replay[:3] == first[3:6]  # chunk 1, the very same frames, then what came while paused
    assert frames(replay) == [3, 4, 5, 6, 7] and marks(replay) == ["t1~1:1", "t1~1:2"]
    assert published_echoes(edge, tw, ws, ["t1~1:1"], seq=6) == [("t1~1:1", False)]
    playback = edge.on(subjects.playback(tw.CALL_SID))[-2]
    assert playback["mark"] == "t1~1:1" and parse_mark(playback["mark"]) == ("t1", 1)
    assert playback["turn_id"] == "t1" and playback["cleared"] is False


def test_a_pause_clears_other_turns_as_an_interrupt_would(edge, tw, ws) -> None:
    """The clear is global: a turn that is not paused loses its flushed audio for good."""
    say(edge, tw, "t0", 0, [1], final=True)
    say(edge, tw, "t1", 0, [2])
    tw.receive_until_mark(ws, "t1:0")
    control(edge, tw, "pause", "t1")
    assert tw.receive_json(ws)["event"] == "clear"
    assert clears(edge, tw)[0]["data"]["unheard_marks"] == ["t0:0", "t1:0"]
    assert published_echoes(edge, tw, ws, ["t0:0", "t1:0"], seq=2) == [("t0:0", True)]
    control(edge, tw, "resume", "t1")
    replay = tw.receive_until_mark(ws, "t1~1:0")
    assert frames(replay) == [2] and marks(replay) == ["t1~1:0"]  # t0 is not played again
    # t0 is over: a pause and resume of every turn plays only t1 again
    control(edge, tw, "pause", "")
    assert tw.receive_json(ws)["event"] == "clear"
    control(edge, tw, "resume", "")
    replay = tw.receive_until_mark(ws, "t1~2:0")
    assert frames(replay) == [2] and marks(replay) == ["t1~2:0"]


def test_an_interrupt_while_paused_ends_the_turn_for_good(edge, tw, ws) -> None:
    say(edge, tw, "t1", 0, [1])
    tw.receive_until_mark(ws, "t1:0")
    control(edge, tw, "pause", "t1")
    assert tw.receive_json(ws)["event"] == "clear"
    say(edge, tw, "t1", 1, [2])
    control(edge, tw, "interrupt", "t1")
    assert tw.receive_json(ws)["event"] == "clear"
    # a late resume or pause and the rest of the turn change nothing; the next turn plays and is heard
    control(edge, tw, "resume", "t1")
    control(edge, tw, "pause", "t1")
    say(edge, tw, "t1", 2, [3], final=True)
    say(edge, tw, "t2", 0, [9], final=True)
    sent = tw.receive_until_mark(ws, "t2:0")
    assert [m["event"] for m in sent] == ["media", "mark"] and frames(sent) == [9]
    assert published_echoes(edge, tw, ws, ["t2:0"], seq=2) == [("t2:0", False)]


def test_a_turn_can_be_paused_and_resumed_again(edge, tw, ws) -> None:
    say(edge, tw, "t1", 0, [1])
    say(edge, tw, "t1", 1, [2])
    tw.receive_until_mark(ws, "t1:1")
    assert published_echoes(edge, tw, ws, ["t1:0"], seq=2) == [("t1:0", False)]
    control(edge, tw, "pause", "t1")
    assert tw.receive_json(ws)["event"] == "clear"
    control(edge, tw, "resume", "t1")
    assert frames(tw.receive_until_mark(ws, "t1~1:1")) == [2]
    # after a resume the turn goes on live, its marks named for that resume
    say(edge, tw, "t1", 2, [3], final=True)
    assert frames(tw.receive_until_mark(ws, "t1~1:2")) == [3]
    assert published_echoes(edge, tw, ws, ["t1~1:1"], seq=4) == [("t1~1:1", False)]

    control(edge, tw, "pause", "t1")
    assert tw.receive_json(ws)["event"] == "clear"
    assert published_echoes(edge, tw, ws, ["t1~1:2"], seq=6) == []  # flushed by the pause
    control(edge, tw, "resume", "t1")
    replay = tw.receive_until_mark(ws, "t1~2:2")
    assert frames(replay) == [3] and marks(replay) == ["t1~2:2"]
    assert published_echoes(edge, tw, ws, ["t1~2:2"], seq=8) == [("t1~2:2", False)]
    # its final mark heard, the turn is over: nothing is left to pause
    control(edge, tw, "pause", "t1")
    tw.nothing_sent(ws)


def test_an_answer_paused_before_its_audio_came_is_held_from_its_first_frame(edge, tw, ws) -> None:
    """The caller went on talking as the answer was on its way: none of it may reach the phone."""
    say(edge, tw, "t0", 0, [1], final=True)
    tw.receive_until_mark(ws, "t0:0")
    control(edge, tw, "pause", "t1")  # before any audio of t1: nothing to clear
    say(edge, tw, "t1", 0, [2, 3], final=True)
    tw.nothing_sent(ws)
    assert published_echoes(edge, tw, ws, ["t0:0"], seq=2) == [("t0:0", False)]  # t0 was not cleared
    control(edge, tw, "resume", "t1")  # only a cough: the answer plays from its start
    sent = tw.receive_until_mark(ws, "t1~1:0")
    assert frames(sent) == [2, 3]
    # and an answer paused early, then interrupted, never plays at all
    control(edge, tw, "pause", "t2")
    say(edge, tw, "t2", 0, [4], final=True)
    control(edge, tw, "interrupt", "t2")
    assert tw.receive_json(ws)["event"] == "clear"
    say(edge, tw, "t3", 0, [5], final=True)
    assert frames(tw.receive_until_mark(ws, "t3:0")) == [5]


async def test_audio_still_queued_in_the_edge_at_a_pause_is_not_lost(tw) -> None:
    """The writer has not sent turn t1 yet when the pause comes: only the clear goes out; on
    resume the whole turn does, its first audio reported once."""
    sent: list[dict] = []
    cleared: list[ClearSent] = []
    first_audio: list[str] = []

    async def send(text: str) -> None:
        sent.append(json.loads(text))

    outbox = Outbox(send)
    playout = Playout(outbox, "MZ1", on_first_audio=lambda turn, timing: first_audio.append(turn),
                      on_clear=cleared.append)
    playout.audio(tw.agent_audio("t1", 0, b"\x01" * 480, mark="t1:0"))
    assert playout.pause("t1") is True and playout.pause("t1") is False
    assert outbox.pending == 1  # the clear: the turn's queued messages were taken back
    playout.audio(tw.agent_audio("t1", 1, b"\x02" * 160, mark="t1:1", final=True))
    assert outbox.pending == 1
    assert playout.resume("t1") == 6  # four frames and two marks
    assert playout.resume("t1") == 0
    writer = asyncio.create_task(outbox.run())
    while outbox.pending:
        await asyncio.sleep(0.01)
    outbox.close()
    await writer
    assert [m["event"] for m in sent] == ["clear"] + ["media"] * 3 + ["mark", "media", "mark"]
    assert marks(sent) == ["t1~1:0", "t1~1:1"]
    assert first_audio == ["t1"]
    (clear,) = cleared
    assert clear.pause and clear.turn_id == "t1" and clear.dropped == 4 and clear.unheard_marks == ()
    assert playout.echoed("t1~1:1") == "heard" and playout.pending_marks == 1


class PlayedPhone:
    """A `Playout` writing into an `Outbox` whose messages are kept, on a clock the test moves
    (t=100 at first)."""

    def __init__(self, **options: Any) -> None:
        self.now = 100.0
        self.sent: list[dict] = []
        self.outbox = Outbox(self._send)
        self.writer = asyncio.create_task(self.outbox.run())
        self.playout = Playout(self.outbox, "MZ1", on_first_audio=lambda turn, timing: None,
                               on_clear=lambda clear: None, clock=lambda: self.now, **options)

    async def _send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def written(self) -> None:
        while self.outbox.pending:
            await asyncio.sleep(0.005)

    async def close(self) -> None:
        self.outbox.close()
        await self.writer


async def test_a_resume_picks_up_where_the_pause_cut_in_less_a_short_rewind(tw) -> None:
    """A 2 s sentence, paused after 1 s of it played: the caller hears it again from 0.6 s, not
    from its start (an "uh-huh" costs a short hesitation, not the whole sentence again)."""
    phone = PlayedPhone(rewind_s=0.4)
    playout = phone.playout
    sentence = b"".join(bytes([i]) * 160 for i in range(100))  # 100 frames of 20 ms, each its own byte
    playout.audio(tw.agent_audio("t1", 0, sentence, mark="t1:0"))
    playout.audio(tw.agent_audio("t1", 1, b"\xff" * 160, mark="t1:1", final=True))
    await phone.written()  # all written at t=100: the phone plays them until t=102.02
    phone.now = 101.0
    assert playout.pause("t1")
    await phone.written()
    phone.sent.clear()
    phone.now = 101.5
    playout.resume("t1")
    await phone.written()
    await phone.close()
    replayed = frames(phone.sent)
    assert replayed[0] in (29, 30) and replayed[-2:] == [99, 255], "from 0.6 s in: 1.0 s played less 0.4 s"
    assert marks(phone.sent) == ["t1~1:0", "t1~1:1"]


@pytest.mark.parametrize(("paused_s", "first"), [(0.3, 50), (1.5, 30)])
async def test_a_short_pause_goes_on_exactly_where_it_cut_in_and_a_long_one_rewinds(tw, paused_s, first) -> None:
    """A backchannel's pause (under `rewind_after_s`): the caller missed nothing, so nothing is
    played twice; after a long pause the last 0.4 s are played again to pick up the thread."""
    phone = PlayedPhone(rewind_s=0.4, rewind_after_s=1.0)
    playout = phone.playout
    sentence = b"".join(bytes([i]) * 160 for i in range(100))  # 100 frames of 20 ms, each its own byte
    playout.audio(tw.agent_audio("t1", 0, sentence, mark="t1:0", final=True))
    await phone.written()  # all written at t=100
    phone.now = 101.0  # 50 frames played
    assert playout.pause("t1")
    await phone.written()
    phone.sent.clear()
    phone.now = 101.0 + paused_s
    playout.resume("t1")
    await phone.written()
    await phone.close()
    assert first - 1 <= frames(phone.sent)[0] <= first  # float rounding of the play-out estimate
