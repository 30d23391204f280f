"""The audio the memory service keeps: a voicemail's caller side, and both sides of a call."""

from __future__ import annotations

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode, mulaw_encode
from ringline.services.memory.tapes import CallTape, VoicemailTape

pytestmark = pytest.mark.unit

RATE = 8000
SILENT = b"\xff" * 160


def _loud(n: int = 1) -> bytes:
    return mulaw_encode(np.full(160 * n, 8000, dtype=np.int16))


def test_voicemail_tape_orders_frames_fills_a_lost_one_and_cuts_the_prompts_silence() -> None:
    tape = VoicemailTape(max_s=60)
    frames = [SILENT] * 100 + [_loud()] * 10  # 2 s of silence (the prompt), then the caller
    for seq in reversed(range(len(frames))):  # arriving in any order
        if seq != 105:  # lost on the way
            tape.add(seq, frames[seq])
    audio = tape.audio()
    assert len(audio) == (12 + 10) * 160  # 240 ms before the first word, and the lost frame as silence
    assert audio[:12 * 160] == SILENT * 12
    assert audio[(12 + 5) * 160:(12 + 6) * 160] == SILENT


def test_voicemail_tape_stops_at_its_limit_and_when_stopped() -> None:
    tape = VoicemailTape(max_s=0.1)  # 5 frames
    for seq in range(10):
        tape.add(seq, _loud())
    assert len(tape.audio()) == 5 * 160
    tape.stop()
    tape.add(99, _loud())
    assert 99 not in tape.frames


def test_call_tape_puts_each_side_on_one_timeline_and_an_interrupt_cuts_the_agent() -> None:
    tape = CallTape(max_s=60)
    for seq in range(50):  # the caller talks for a second, from 0.5 s
        tape.add_caller(seq, _loud(), elapsed_s=0.5 + seq * 0.02)
    tape.add_agent(_loud(100), elapsed_s=1.6)  # two seconds of answer arrive at once at 1.6 s
    tape.interrupt(elapsed_s=2.6)  # the caller barges in after one second of it
    stereo = mulaw_decode(tape.audio()).reshape(-1, 2)
    caller, agent = (np.flatnonzero(np.abs(stereo[:, ch]) > 1000) for ch in (0, 1))
    assert caller[0] == int(0.5 * RATE) and caller[-1] == int(1.5 * RATE) - 1
    assert agent[0] == int(1.6 * RATE) and agent[-1] == int(2.6 * RATE) - 1
