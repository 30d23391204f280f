"""End-of-turn bench: the text rules against the end-of-turn model, utterance by utterance, in one run.

    .venv/bin/python tests/bench/turn_bench.py [--rounds 1] [--configs rules model model-early100]

The stt session alone (no broker, no other service: a shared 2-core box stays quiet enough to
compare), with the real Whisper model and the real Smart Turn model, on Piper speech through
8 kHz mu-law with faint line noise, streamed in real time (20 ms frames, wall-clock capture times).
Configurations take turns on every utterance, so load from other work hits them alike. Printed per
configuration: end of speech -> final transcript (p50/p95) over the single-sentence utterances,
how the turns ended, and false cut-offs: sentences with a 600 ms or 1 s pause in the middle that
came out as two transcripts.

- `rules`: the old end of turn (early transcript's words and silence), `turn_model=False`;
- `model`: the end-of-turn model at every pause, the words as second opinion;
- `model-early100`: the same, the early decode and the model's look at 100 ms of silence, not 160;
- `rules-early100`: the text rules with the early decode at 100 ms of silence, not 160;
- `rules-threads1`: the text rules with Whisper on one thread (the default before it took two);
- `rules-fast`: the text rules with the early decode at 100 ms of silence and a complete sentence
  ending the turn after 200 ms (not 160 and 350);
- `rules-fast-w10`, `model-fast-w10`: the same (without and with the model) with Whisper's encoder
  window at 10 s instead of 20 s (a shorter decode).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ringline.contracts.audio import mulaw_encode
from ringline.contracts.events import STT_UTTERANCE
from ringline.contracts.messages import AudioFrame, CallEvent, CallStart, Transcript
from ringline.services.stt.recognizer import build_recognizer
from ringline.services.stt.session import SttSession
from ringline.services.stt.settings import SttSettings
from ringline.services.stt.smart_turn import SmartTurn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "stt"))
from conftest import _speak, make_silence

SENTENCES = [
    "Please tell me a long story about a brave knight and a friendly dragon.",
    "Can you describe, in detail, how to plan a week long trip to Italy?",
    "What time does the pharmacy close on Saturday?",
    "Hold on, stop there. Can I ask something else?",
    "I would like to book a table for two people tonight.",
    "Please transfer me to someone in billing.",
]
PAUSED = [
    ("I'd like to book a table", 600, "for Tuesday evening."),
    ("Can you remind me", 600, "what time you close today?"),
    ("Could you tell me", 1000, "how long the drive from the station takes?"),
    ("My daughter and I would like", 1000, "a quiet table near the window."),
]
CONFIGS: dict[str, dict[str, Any]] = {
    "rules": {"turn_model": False},
    "model": {"turn_model": True},
    "model-early100": {"turn_model": True, "early_decode_ms": 100},
    "rules-early100": {"turn_model": False, "early_decode_ms": 100},
    "rules-threads1": {"turn_model": False, "whisper_threads": 1},
    "rules-fast": {"turn_model": False, "early_decode_ms": 100, "complete_silence_ms": 200},
    "rules-fast-w10": {"turn_model": False, "early_decode_ms": 100, "complete_silence_ms": 200,
                       "whisper_window_s": 10.0},
    "model-fast-w10": {"turn_model": True, "early_decode_ms": 100, "complete_silence_ms": 200,
                       "whisper_window_s": 10.0},
}


class Bus:
    """What a session publishes, kept; its tasks, spawned (no broker)."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.call_id = "bench"

    async def subscribe(self, subject: str, handler: Any) -> None:
        return None

    async def publish(self, message: Any, subject: str, headers: dict[str, str] | None = None) -> None:
        self.messages.append(message)

    def spawn(self, coro: Any, name: str = "") -> asyncio.Task[Any]:
        return asyncio.create_task(coro, name=name)


@dataclass
class Tally:
    end_of_turn_ms: list[float] = field(default_factory=list)
    reasons: Counter[str] = field(default_factory=Counter)
    cutoffs: Counter[int] = field(default_factory=Counter)
    paused: Counter[int] = field(default_factory=Counter)


async def run(session: SttSession, bus: Bus, audio: np.ndarray) -> tuple[list[Transcript], list[CallEvent]]:
    payload = mulaw_encode(audio)
    start = time.time()
    for seq, offset in enumerate(range(0, len(payload), 160)):
        at = start + offset / 8000
        await asyncio.sleep(max(0.0, at - time.time()))
        await session.on_frame(AudioFrame(call_id="bench", seq=seq, payload=payload[offset:offset + 160],
                                          captured_at=at))
    await asyncio.sleep(2.0)  # the last decode comes back
    finals = [m for m in bus.messages if isinstance(m, Transcript) and m.is_final]
    events = [m for m in bus.messages if isinstance(m, CallEvent) and m.name == STT_UTTERANCE]
    return finals, events


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--configs", nargs="+", default=["rules", "model"], choices=list(CONFIGS))
    args = parser.parse_args(argv)
    recognizers: dict[tuple[float, int], Any] = {}  # one per encoder window and thread count asked for
    for name in args.configs:
        settings = SttSettings(**CONFIGS[name])
        key = (settings.whisper_window_s, settings.whisper_threads)
        if key not in recognizers:
            recognizers[key] = build_recognizer(settings)
            await recognizers[key].load()
    model = SmartTurn()
    if not await asyncio.to_thread(model.load):
        print("the end-of-turn model is missing: run scripts/install.sh", file=sys.stderr)
        return 1
    lead, tail = make_silence(400, noise=20), make_silence(2000, noise=20, seed=1)
    clips = [(text, None, np.concatenate([lead, _speak(text), tail])) for text in SENTENCES]
    clips += [(f"{a} … {b}", pause, np.concatenate([lead, _speak(a), make_silence(pause, noise=20, seed=2),
                                                     _speak(b), tail])) for a, pause, b in PAUSED]
    tallies = {name: Tally() for name in args.configs}
    for _ in range(args.rounds):
        for label, pause, audio in clips:
            for name in args.configs:
                settings = SttSettings(**CONFIGS[name])
                bus = Bus()
                recognizer = recognizers[(settings.whisper_window_s, settings.whisper_threads)]
                session = SttSession(CallStart(call_id="bench"), bus, recognizer,  # type: ignore[arg-type]
                                     settings.endpointer_config(), settings.turn_config(), model)
                finals, events = await run(session, bus, audio)
                tally = tallies[name]
                tally.reasons.update(e.data["end_reason"] for e in events)
                if pause is None:
                    tally.end_of_turn_ms += [e.data["end_of_turn_ms"] for e in events]
                else:
                    tally.paused[pause] += 1
                    tally.cutoffs[pause] += len(finals) > 1
                print(f"{name:>15} | {label[:50]:50} | " + ", ".join(
                    f"{e.data['end_reason']} after {e.data['silence_waited_ms']} ms, transcript "
                    f"{e.data['end_of_turn_ms']:.0f} ms (p={e.data.get('turn_probability')})" for e in events),
                    flush=True)
    print()
    for name, tally in tallies.items():
        eot = tally.end_of_turn_ms
        p95 = sorted(eot)[max(0, round(0.95 * len(eot)) - 1)] if eot else 0
        print(f"{name:>15}: end of speech -> transcript p50 {statistics.median(eot):.0f} / p95 {p95:.0f} ms "
              f"(n={len(eot)}); cut-offs 600 ms {tally.cutoffs[600]}/{tally.paused[600]}, "
              f"1 s {tally.cutoffs[1000]}/{tally.paused[1000]}; ended by {dict(tally.reasons)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
