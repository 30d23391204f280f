"""TTS benchmark: first-audio latency and real-time factor of the Piper voice, as the service runs it.

    .venv/bin/python tests/bench/tts_bench.py [--threads 1] [--calls 1] [--rounds 2]

Two views of the same sentences:
  provider  `Synthesizer.stream` (worker thread, soxr to 8 kHz, mu-law, 100 ms pieces):
            first audio = request -> first piece; RTF = wall time to last piece / audio length.
  service   the TTS service on FastStream's in-memory broker: ReplyChunk published ->
            first AgentAudio of that turn received (one turn per sentence, `--calls` calls at once,
            so calls queue for the single Piper thread).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from faststream.nats import TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.messages import SAMPLE_RATE, AgentAudio, CallStart, ReplyChunk
from ringline.services.tts.app import build_service
from ringline.services.tts.piper_provider import PiperSynthesizer
from ringline.services.tts.settings import TtsSettings

SENTENCES = [
    "Hi, thanks for calling, this is the Ringline assistant.",
    "How can I help you today?",
    "Sure, I can take a message for the team.",
    "Could you tell me your name and the best number to reach you?",
    "Our office is open from nine in the morning until five in the afternoon, Monday to Friday.",
    "Got it.",
    "I have booked a call back for tomorrow at ten thirty.",
    "Is there anything else I can help you with?",
    "The total for your order comes to forty two dollars and fifty cents, including delivery.",
    "Thanks for calling, and have a great day!",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, first_ms: list[float], rtf: list[float] | None = None) -> None:
    line = (f"{label:<9} n={len(first_ms):<3} first audio p50 {pct(first_ms, 0.5):6.0f} ms  "
            f"p95 {pct(first_ms, 0.95):6.0f} ms  max {max(first_ms):6.0f} ms")
    if rtf:
        line += f"  RTF mean {statistics.mean(rtf):.3f}  p95 {pct(rtf, 0.95):.3f}"
    print(line)


async def bench_provider(settings: TtsSettings, rounds: int) -> None:
    synth = PiperSynthesizer(threads=settings.threads, piece_ms=settings.piece_ms)
    started = time.perf_counter()
    await synth.start()
    print(f"voice load + warm-up: {(time.perf_counter() - started) * 1000:.0f} ms")
    first_ms, rtf, audio_s = [], [], 0.0
    try:
        for _ in range(rounds):
            for text in SENTENCES:
                t0 = time.perf_counter()
                first, size = None, 0
                async for piece in synth.stream(text):
                    first = first if first is not None else time.perf_counter() - t0
                    size += len(piece)
                wall = time.perf_counter() - t0
                first_ms.append(first * 1000)
                rtf.append(wall / (size / SAMPLE_RATE))
                audio_s += size / SAMPLE_RATE
    finally:
        await synth.aclose()
    report("provider", first_ms, rtf)
    print(f"          {audio_s:.1f} s of audio from {len(first_ms)} sentences")


async def bench_service(settings: TtsSettings, rounds: int, calls: int) -> None:
    service = build_service(settings)
    await service.startup()
    sent: dict[tuple[str, str], float] = {}
    first: dict[tuple[str, str], float] = {}
    done: dict[str, asyncio.Event] = {}

    async def on_audio(audio: AgentAudio) -> None:
        first.setdefault((audio.call_id, audio.turn_id), time.perf_counter())
        if audio.final:
            done[f"{audio.call_id}/{audio.turn_id}"].set()

    try:
        async with TestNatsBroker(service.broker) as broker:
            call_ids = [f"bench-{n}" for n in range(calls)]
            for call_id in call_ids:
                sub = broker.subscriber(subjects.audio_out(call_id), persistent=False)
                sub(on_audio)
                await sub.start()
                await broker.publish(CallStart(call_id=call_id), subjects.CALLS_START)
            for n, text in enumerate(SENTENCES * rounds):
                turn_id = f"t{n}"
                for call_id in call_ids:  # every call speaks the same turn at the same moment
                    done[f"{call_id}/{turn_id}"] = asyncio.Event()
                    sent[(call_id, turn_id)] = time.perf_counter()
                    chunk = ReplyChunk(call_id=call_id, turn_id=turn_id, seq=0, text=text, final=True)
                    await broker.publish(chunk, subjects.reply(call_id))
                await asyncio.gather(*(done[f"{c}/{turn_id}"].wait() for c in call_ids))
            await service.router.drain()
    finally:
        await service.shutdown()
    report(f"service×{calls}", [(first[key] - sent[key]) * 1000 for key in sent])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    parser.add_argument("--calls", type=int, default=1, help="concurrent calls in the service run")
    parser.add_argument("--rounds", type=int, default=2, help="passes over the 10 sentences")
    args = parser.parse_args()
    settings = TtsSettings(threads=args.threads)
    await bench_provider(settings, args.rounds)
    await bench_service(settings, args.rounds, 1)
    if args.calls > 1:
        await bench_service(settings, args.rounds, args.calls)


if __name__ == "__main__":
    asyncio.run(main())
