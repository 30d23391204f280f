"""Call audio kept by the memory service, as 8 kHz mu-law. Pure: no I/O.

`VoicemailTape`: the caller's side from `voicemail.started` until the message is taken, frames
in sequence order (a lost frame becomes 20 ms of silence), with the silence before the caller's
first word cut to a quarter of a second (the prompt plays meanwhile).

`CallTape`: both sides of a call (`record_audio: true`), caller left, agent right, on one
timeline: a caller frame sits where its sequence number puts it; an agent piece plays right
after the previous one or, when the agent was silent, at the moment it arrived; an interrupt
cuts what the agent had queued beyond that moment, as the edge's `clear` does.
"""

from __future__ import annotations

import numpy as np

from ringline.contracts.audio import mulaw_decode, rms_dbfs
from ringline.contracts.messages.audio import FRAME_BYTES, SAMPLE_RATE

SILENCE = b"\xff"  # mu-law for 0
VOICED_DBFS = -45.0  # a frame louder than this is the caller talking
LEAD_IN_FRAMES = 12  # 240 ms kept before the first word
MAX_GAP_FRAMES = 50  # a longer jump in sequence numbers is not filled with silence


class VoicemailTape:
    def __init__(self, max_s: float) -> None:
        self.max_frames = int(max_s * 1000 / 20)
        self.frames: dict[int, bytes] = {}
        self.recording = True

    def add(self, seq: int, payload: bytes) -> None:
        if self.recording and len(self.frames) < self.max_frames and payload:
            self.frames.setdefault(seq, payload)

    def stop(self) -> None:
        self.recording = False

    def audio(self) -> bytes:
        frames: list[bytes] = []
        previous = None
        for seq in sorted(self.frames):
            if previous is not None and 1 < seq - previous <= MAX_GAP_FRAMES:
                frames.extend([SILENCE * FRAME_BYTES] * (seq - previous - 1))
            frames.append(self.frames[seq])
            previous = seq
        first = next((i for i, f in enumerate(frames) if rms_dbfs(mulaw_decode(f)) > VOICED_DBFS), 0)
        return b"".join(frames[max(0, first - LEAD_IN_FRAMES):])


class CallTape:
    def __init__(self, max_s: float) -> None:
        self.max_bytes = int(max_s * SAMPLE_RATE)
        self.caller = bytearray()
        self.agent = bytearray()
        self._caller_base: int | None = None  # byte position of caller frame seq 0

    def add_caller(self, seq: int, payload: bytes, elapsed_s: float) -> None:
        if self._caller_base is None:
            self._caller_base = max(0, int(elapsed_s * SAMPLE_RATE) // FRAME_BYTES - seq) * FRAME_BYTES
        self._write(self.caller, self._caller_base + seq * FRAME_BYTES, payload)

    def add_agent(self, payload: bytes, elapsed_s: float) -> None:
        if payload:
            self._write(self.agent, max(len(self.agent), int(elapsed_s * SAMPLE_RATE)), payload)

    def interrupt(self, elapsed_s: float) -> None:
        del self.agent[max(0, int(elapsed_s * SAMPLE_RATE)):]

    def _write(self, track: bytearray, at: int, payload: bytes) -> None:
        if at + len(payload) > self.max_bytes:
            return
        if at > len(track):
            track.extend(SILENCE * (at - len(track)))
        track[at:at + len(payload)] = payload

    @property
    def empty(self) -> bool:
        return not (self.caller or self.agent)

    def audio(self) -> bytes:
        """Interleaved stereo mu-law: caller, agent, caller, agent..."""
        length = max(len(self.caller), len(self.agent))
        out = np.full((length, 2), SILENCE[0], dtype=np.uint8)
        out[:len(self.caller), 0] = np.frombuffer(bytes(self.caller), dtype=np.uint8)
        out[:len(self.agent), 1] = np.frombuffer(bytes(self.agent), dtype=np.uint8)
        return out.tobytes()
