"""stt word error rate and decode time on phone-band speech in voices Ringline never speaks with.

    .venv/bin/python tests/bench/wer_bench.py [--split test] [--configs before after ...] [--errors]

The sentences (tests/bench/data/wer_sentences.tsv) are what callers say to three agents (a dental
practice, a restaurant, a returns desk), each after the agent's question, with names, dates,
numbers, "book", "refund", "cancel my appointment" and addresses. They are rendered at run time
by Debian's other voices (espeak-ng variants, flite, festival; MBROLA when installed: see
phone_voices.py) through 8 kHz mu-law, and cached in --cache. A voice that is not installed is
skipped with the reason.

Two splits that share neither sentences nor voices: `dev` (24 sentences x 4 voices) is where the
options were tried; `test` (the other 24 sentences x 6 voices, 9 with MBROLA) is what the README reports.

Every configuration's recognizer is loaded at once and each utterance is decoded by all of them
back to back, so timings of one run compare fairly on a busy machine. Per configuration: WER
(after `phone_voices.normalize`), per voice WER, decode wall time p50/p95 and CPU seconds per
utterance. `before` is the recognizer as it was (tiny.en, greedy, no prompt); `after` is the
service's defaults now (SttSettings()); the prompt is the agent's keyterms and its last line
(`hints=both`), or one of them (`keyterms`, `agent`).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ringline.services.stt.prompt import NO_HINTS, Hints
from ringline.services.stt.settings import SttSettings
from ringline.services.stt.whisper import BASE_MODEL_DIR, WhisperOptions, WhisperRecognizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from phone_voices import Voice, word_errors

DATA = Path(__file__).resolve().parent / "data" / "wer_sentences.tsv"
KEYTERMS = {  # what each agent would list under providers.keyterms
    "dental": ("Brightside Dental", "Dr. Okafor", "Dr. Lindqvist", "cleaning", "crown", "filling", "Invisalign"),
    "restaurant": ("Casa Marisol", "booking", "tasting menu", "patio", "paella", "gluten free"),
    "returns": ("Northwind", "refund", "store credit", "warranty", "dishwasher", "pickup"),
}
VOICES = {  # espeak-ng's Scottish, Caribbean and West Midlands English are left out: tiny.en got 70-83%
    # of their words wrong through the phone band (its other voices ~50%), so they would only add noise.
    "dev": [
        Voice("espeak-us-m3", "espeak-ng", "en-us+m3"),
        Voice("flite-kal16", "flite", "kal16"),
        Voice("flite-slt", "flite", "slt"),
        Voice("festival-ked", "festival", "ked_diphone"),
    ],
    "test": [
        Voice("espeak-nyc-f2", "espeak-ng", "en-us-nyc+f2"),
        Voice("espeak-rp", "espeak-ng", "en-gb-x-rp"),
        Voice("flite-awb", "flite", "awb"),
        Voice("flite-rms", "flite", "rms"),
        Voice("festival-kal", "festival", "kal_diphone"),
        Voice("festival-slt-hts", "festival", "cmu_us_slt_arctic_hts"),
        Voice("mbrola-us1", "espeak-ng", "mb-us1"),
        Voice("mbrola-us2", "espeak-ng", "mb-us2"),
        Voice("mbrola-us3", "espeak-ng", "mb-us3"),
    ],
}
CONFIGS: dict[str, dict[str, object]] = {
    "before": {"model": "tiny.en", "hints": "none"},  # the recognizer before the prompt: greedy tiny.en
    "after": {"hints": "both"},  # the service's defaults (SttSettings()), whatever they are now
    "tiny+keyterms": {"model": "tiny.en", "hints": "keyterms"},
    "tiny+agent": {"model": "tiny.en", "hints": "agent"},
    "tiny+prompt": {"model": "tiny.en", "hints": "both"},
    "tiny+prompt-beam2": {"model": "tiny.en", "hints": "both", "beam_size": 2},
    "tiny+prompt-beam4": {"model": "tiny.en", "hints": "both", "beam_size": 4},
    "tiny+prompt-beam4-30s": {"model": "tiny.en", "hints": "both", "beam_size": 4, "window_s": 30.0},
    "tiny+prompt-beam4-10s": {"model": "tiny.en", "hints": "both", "beam_size": 4, "window_s": 10.0},
    "base": {"model": "base", "hints": "none"},
    "base+prompt": {"model": "base", "hints": "both"},
    "base+prompt-beam4": {"model": "base", "hints": "both", "beam_size": 4},
}


@dataclass(frozen=True)
class Item:
    agent: str
    question: str
    said: str

    def hints(self, kind: str) -> Hints:
        keyterms = KEYTERMS[self.agent] if kind in ("keyterms", "both") else ()
        recent = (self.question,) if kind in ("agent", "both") else ()
        return Hints(keyterms, recent) if keyterms or recent else NO_HINTS


@dataclass
class Score:
    errors: int = 0
    words: int = 0

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / max(1, self.words)


def load_items(split: str) -> list[Item]:
    rows = [line.split("\t") for line in DATA.read_text().splitlines() if line and not line.startswith("#")]
    return [Item(agent, question, said) for part, agent, question, said in rows if part == split]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def build(name: str, base_path: Path) -> WhisperRecognizer:
    spec = dict(CONFIGS[name])
    hints = spec.pop("hints")
    defaults = WhisperOptions.from_settings(SttSettings())
    if name == "after":
        options = defaults
        model = options.model
    else:
        model = str(spec.pop("model"))
        spec.setdefault("window_s", 20.0)  # the window before it became 10 s (configs name a change)
        options = WhisperOptions(model=model, model_path=base_path if model == "base" else None,
                                 prompt=hints != "none", **spec)  # type: ignore[arg-type]
    recognizer = WhisperRecognizer(options)
    await recognizer.load()
    if model == "base" and recognizer.name != "whisper-base":
        sys.exit(f"{name}: Whisper base is not installed at {base_path} (python scripts/whisper_base_model.py)")
    return recognizer


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=["before", "tiny+prompt", "after",
                                                                                    "base+prompt-beam4"])
    parser.add_argument("--voices", nargs="*", help="only these voices (names as printed)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/ringline-wer-bench"), help="rendered audio")
    parser.add_argument("--base-path", type=Path, default=BASE_MODEL_DIR)
    parser.add_argument("--errors", action="store_true", help="print every misheard utterance")
    args = parser.parse_args()

    items = load_items(args.split)[: args.limit or None]
    voices = []
    for voice in VOICES[args.split]:
        if args.voices and voice.name not in args.voices:
            continue
        why = voice.missing()
        print(f"voice {voice.name}: {'skipped, ' + why if why else 'ok'}")
        if not why:
            voices.append(voice)
    if not voices:
        sys.exit("no voice to render with: apt-get install espeak-ng flite festival festvox-kallpc16k")
    recognizers = {name: await build(name, args.base_path) for name in args.configs}
    scores: dict[str, dict[str, Score]] = {name: defaultdict(Score) for name in args.configs}
    wall: dict[str, list[float]] = defaultdict(list)
    cpu: dict[str, list[float]] = defaultdict(list)
    audio_s: list[float] = []
    for voice in voices:
        for item in items:
            pcm = voice.render(item.said, args.cache)
            audio_s.append(pcm.size / 8000)
            for name, recognizer in recognizers.items():
                hints = item.hints(str(CONFIGS[name]["hints"]))
                started_cpu, started = time.process_time(), time.perf_counter()
                result = await recognizer.transcribe(np.asarray(pcm), hints)
                wall[name].append(time.perf_counter() - started)
                cpu[name].append(time.process_time() - started_cpu)
                errors, words = word_errors(item.said, result.text)
                for key in (voice.name, "all"):
                    scores[name][key].errors += errors
                    scores[name][key].words += words
                if args.errors and errors:
                    print(f"  {name:>18} {voice.name:<20} {errors} | {item.said} -> {result.text}")
        print(f"{voice.name}: " + ", ".join(f"{name} {scores[name][voice.name].wer:.1f}%" for name in args.configs),
              flush=True)
    first = args.configs[0]
    print(f"\n{args.split} split: {len(items)} sentences x {len(voices)} voices = {len(audio_s)} utterances, "
          f"{statistics.mean(audio_s):.1f} s on average; words: {scores[first]['all'].words}")
    print(f"{'config':<20}{'WER %':>7}{'errors':>8}{'decode p50 ms':>15}{'p95 ms':>8}{'CPU ms/utt':>12}"
          f"{'x ' + first:>16}")
    for name in args.configs:
        score = scores[name]["all"]
        ratio = statistics.mean(cpu[name]) / max(1e-9, statistics.mean(cpu[first]))
        print(f"{name:<20}{score.wer:>7.1f}{score.errors:>8}{pct(wall[name], 0.5) * 1000:>15.0f}"
              f"{pct(wall[name], 0.95) * 1000:>8.0f}{statistics.mean(cpu[name]) * 1000:>12.0f}{ratio:>15.2f}x")
    print("\nWER % per voice")
    print(f"{'voice':<22}" + "".join(f"{name:>18}" for name in args.configs))
    for voice in voices:
        print(f"{voice.name:<22}" + "".join(f"{scores[name][voice.name].wer:>18.1f}" for name in args.configs))
    for recognizer in recognizers.values():
        await recognizer.close()


if __name__ == "__main__":
    asyncio.run(main())
