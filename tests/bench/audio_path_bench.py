"""CPU per second of call audio on the edge's two hot paths, old behaviour and new in one run.

    .venv/bin/python tests/bench/audio_path_bench.py [--seconds 600]

- caller audio in: a Twilio `media` message parsed and turned into the msgpack body published for
  the stt; old: an `AudioFrame` model built and dumped per frame, new: `FramePublisher`'s one dump;
- agent audio out: 100 ms pieces from TTS through `Playout` and the `Outbox` into a socket that
  takes everything; old: one `media` message per 20 ms frame, new: one per 100 ms piece.

Process CPU time (not wall clock), so other load on the machine matters little. Prints numbers,
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time

from ringline.contracts.codec import pack
from ringline.contracts.messages import AgentAudio, AudioFrame
from ringline.services.telephony import twilio_protocol as tp
from ringline.services.telephony.outbox import Outbox
from ringline.services.telephony.playout import Playout

CALL = "CA" + "0" * 32


def inbound(seconds: float, old: bool) -> float:
    frames = int(seconds * 50)
    texts = [json.dumps({"event": "media", "sequenceNumber": str(i + 2), "streamSid": "MZ1",
                         "media": {"track": "inbound", "chunk": str(i + 1), "timestamp": str(i * 20),
                                   "payload": base64.b64encode(bytes([i % 256]) * 160).decode()}})
             for i in range(frames)]
    body = AudioFrame(call_id=CALL, seq=0, payload=b"").model_dump(mode="python")
    started = time.process_time()
    for text in texts:
        event = tp.parse_message(text)
        assert isinstance(event, tp.Media)
        if old:
            pack(tp.to_audio_frame(event, CALL, time.time()))
        else:
            body.update(seq=event.sequence_number, payload=event.payload, captured_at=time.time())
            pack(body)
    return time.process_time() - started


async def outbound(seconds: float, frames_per_message: int) -> float:
    async def send(text: str) -> None:
        return None

    outbox = Outbox(send)
    writer = asyncio.create_task(outbox.run())
    playout = Playout(outbox, "MZ1", on_first_audio=lambda turn, timing: None, on_clear=lambda clear: None,
                      frames_per_message=frames_per_message)
    pieces = int(seconds * 10)
    started = time.process_time()
    for i in range(pieces):
        turn = f"t{i // 30}"  # 3 s turns of 100 ms pieces, a mark each second
        mark = f"{turn}:{i % 30 // 10}" if i % 10 == 9 else None
        playout.audio(AgentAudio(call_id=CALL, turn_id=turn, seq=i % 30, payload=bytes([i % 256]) * 800, mark=mark,
                                 final=i % 30 == 29))
        if i % 10 == 9:
            while outbox.pending:
                await asyncio.sleep(0)
            for name in [f"{turn}:{i % 30 // 10}"]:
                playout.echoed(name)
    while outbox.pending:
        await asyncio.sleep(0)
    used = time.process_time() - started
    outbox.close()
    await writer
    return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="seconds of call audio each way")
    seconds = parser.parse_args().seconds
    print(f"{seconds:.0f} s of call audio each way; CPU ms per call-second (lower is better)")
    for name, old, new in (
        ("caller audio in (parse + body)", lambda: inbound(seconds, True), lambda: inbound(seconds, False)),
        ("agent audio out (playout + outbox)", lambda: asyncio.run(outbound(seconds, 1)),
         lambda: asyncio.run(outbound(seconds, 5))),
    ):
        a, b = old(), new()
        print(f"{name:<36} old {a / seconds * 1000:6.3f}  new {b / seconds * 1000:6.3f}  new/old {b / a:.2f}")


if __name__ == "__main__":
    main()
