"""Agent audio in `media` messages of several frames (`media_message_ms`): the phone hears the same
audio, in the same order, with the marks where they were; a barge-in still clears at once, and a
resume still picks up close to where the pause cut in.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from ringline.services.telephony import twilio_protocol as tp
from ringline.services.telephony.outbox import Outbox
from ringline.services.telephony.playout import ClearSent, Playout

pytestmark = pytest.mark.unit

SILENCE = 0xFF


def frame_bytes(sent: list[dict[str, Any]]) -> list[int]:
    """The byte each 20 ms frame the phone got is made of, whatever message carried it."""
    out: list[int] = []
    for message in sent:
        if message["event"] == "media":
            audio = base64.b64decode(message["media"]["payload"])
            assert len(audio) % 160 == 0, "a media message carries whole frames"
            out += [audio[i] for i in range(0, len(audio), 160)]
    return out


def sizes(sent: list[dict[str, Any]]) -> list[int | str]:
    """Frames per media message, and the marks between them."""
    return [len(base64.b64decode(m["media"]["payload"])) // 160 if m["event"] == "media" else m["event"]
            for m in sent]


class Phone:
    def __init__(self, frames_per_message: int, clock: list[float] | None = None) -> None:
        self.sent: list[dict[str, Any]] = []
        self.clears: list[ClearSent] = []
        self.first_audio: list[str] = []
        self.outbox = Outbox(self._send)
        now = clock or [100.0]
        self.playout = Playout(self.outbox, "MZ1", on_first_audio=lambda turn, timing: self.first_audio.append(turn),
                               on_clear=self.clears.append, rewind_s=0.4, clock=lambda: now[0],
                               frames_per_message=frames_per_message)

    async def _send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def written(self) -> None:
        while self.outbox.pending:
            await asyncio.sleep(0.005)


def test_pieces_are_whole_frames_and_only_the_last_frame_is_padded() -> None:
    pieces = tp.media_pieces(b"\x01" * 800 + b"\x02" * 100, frames_per_message=5)
    assert [len(p) for p in pieces] == [800, 160]
    assert pieces[1] == b"\x02" * 100 + b"\xff" * 60
    assert tp.media_pieces(b"", 5) == []
    assert [len(p) for p in tp.media_pieces(b"\x00" * 480, 1)] == [160] * 3


async def test_the_phone_hears_the_same_frames_and_marks_in_fewer_messages(tw) -> None:
    one, five = Phone(1), Phone(5)
    for phone in (one, five):
        writer = asyncio.create_task(phone.outbox.run())
        # 100 ms pieces as TTS sends them, a 30 ms tail with the chunk's mark, then a final chunk
        phone.playout.audio(tw.agent_audio("t1", 0, bytes([1]) * 800))
        phone.playout.audio(tw.agent_audio("t1", 1, bytes([2]) * 800 + bytes([3]) * 240, mark="t1:0"))
        phone.playout.audio(tw.agent_audio("t1", 2, bytes([4]) * 1600, mark="t1:1", final=True))
        await phone.written()
        phone.outbox.close()
        await writer
    assert frame_bytes(five.sent) == frame_bytes(one.sent) == [1] * 5 + [2] * 5 + [3, 3] + [4] * 10
    assert sizes(five.sent) == [5, 5, 2, "mark", 5, 5, "mark"]
    assert len(one.sent) == 24  # 22 messages of one frame and the marks
    assert five.first_audio == one.first_audio == ["t1"]


async def test_a_barge_in_clears_at_once_and_drops_what_is_still_queued(tw) -> None:
    phone = Phone(5)
    phone.playout.audio(tw.agent_audio("t1", 0, bytes([1]) * 4000, mark="t1:0"))  # 0.5 s: 5 messages
    dropped = phone.playout.interrupt("t1")
    writer = asyncio.create_task(phone.outbox.run())
    await phone.written()
    phone.outbox.close()
    await writer
    assert dropped == 6 and [m["event"] for m in phone.sent] == ["clear"]
    (clear,) = phone.clears
    assert clear.turn_id == "t1" and clear.dropped == 6


async def test_a_resume_picks_up_within_one_message_of_where_the_pause_cut_in(tw) -> None:
    """A 2 s sentence in 100 ms messages, paused after 1 s played: it goes on from 0.6 s (1.0 s
    less the 0.4 s rewind), to a message's length, not from the sentence's start."""
    now = [100.0]
    phone = Phone(5, now)
    writer = asyncio.create_task(phone.outbox.run())
    sentence = b"".join(bytes([i]) * 160 for i in range(100))  # 100 frames, each its own byte
    phone.playout.audio(tw.agent_audio("t1", 0, sentence, mark="t1:0"))
    phone.playout.audio(tw.agent_audio("t1", 1, b"\xfe" * 160, mark="t1:1", final=True))
    await phone.written()  # all written at t=100: the phone plays them until t=102.02
    now[0] = 101.0
    assert phone.playout.pause("t1")
    await phone.written()
    phone.sent.clear()
    now[0] = 102.5  # a long pause: the rewind applies
    phone.playout.resume("t1")
    await phone.written()
    phone.outbox.close()
    await writer
    replayed = frame_bytes(phone.sent)
    assert replayed[0] in (25, 30), "from 0.6 s in, to a 100 ms message"
    assert replayed[-2:] == [99, 0xFE]
    assert [m["mark"]["name"] for m in phone.sent if m["event"] == "mark"] == ["t1~1:0", "t1~1:1"]
