"""Cloud providers' client-side time to first result, against the doubles on loopback.

    .venv/bin/python tests/bench/cloud_bench.py [--runs 20]

The doubles inject published latencies; what is measured on top is our client path (the vendor
SDK, our provider class, the event loop):

  deepgram   end of speech -> final transcript (end of turn). Audio streams in real time as
             20 ms frames, each sent once "captured"; the double endpoints after 200 ms of
             silence and delays every message by 50 ms: 250 ms injected.
  claude     `ClaudeChatModel.stream` called -> first text piece; first token after 350 ms.
  cartesia   `CartesiaSynthesizer.stream` called -> first audio piece, warm connection;
             first audio after 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

def load_doubles() -> None:
    """Register tests/doubles as the package `doubles` (and put nothing else of tests/ on the path)."""
    if "doubles" in sys.modules:
        return
    folder = Path(__file__).resolve().parents[1] / "doubles"
    spec = importlib.util.spec_from_file_location("doubles", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["doubles"] = module
    spec.loader.exec_module(module)


load_doubles()

from doubles.anthropic import AnthropicDouble, AnthropicFaults  # noqa: E402
from doubles.audio import frames, silence, tone  # noqa: E402
from doubles.cartesia import CartesiaDouble, CartesiaFaults  # noqa: E402
from doubles.deepgram import DeepgramDouble, DeepgramFaults  # noqa: E402
from ringline.services.brain.llm.claude import ClaudeChatModel  # noqa: E402
from ringline.services.stt.deepgram import DeepgramOptions, DeepgramRecognizer  # noqa: E402
from ringline.services.tts.cartesia import CartesiaOptions, CartesiaSynthesizer  # noqa: E402

DEEPGRAM_ENDPOINTING_MS, DEEPGRAM_LATENCY_MS = 200, 50
CLAUDE_FIRST_TOKEN_MS = 350
CARTESIA_FIRST_AUDIO_MS = 100
QUESTION = [{"role": "system", "content": "You are a phone agent."},
            {"role": "user", "content": "What is the capital of France?"}]
LINE = "Sure, I can help you with that."


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(label: str, ms: list[float], injected_ms: float, extra: str = "") -> None:
    over = [m - injected_ms for m in ms]
    print(f"{label:<9} n={len(ms):<3} first result p50 {pct(ms, .5):6.1f} ms  p95 {pct(ms, .95):6.1f} ms  "
          f"| injected {injected_ms:.0f} ms -> overhead p50 {pct(over, .5):5.1f} ms  p95 {pct(over, .95):5.1f} ms  "
          f"max {max(over):5.1f} ms{extra}")


async def bench_deepgram(runs: int) -> None:
    speech_start_ms, speech_ms = 300, 1000
    audio = np.concatenate([silence(speech_start_ms), tone(speech_ms), silence(700)])
    faults = DeepgramFaults(latency_ms=DEEPGRAM_LATENCY_MS)
    results, connects = [], []
    async with DeepgramDouble(script=["What is the capital of France?"] * (runs + 1), faults=faults) as double:
        recognizer = DeepgramRecognizer(DeepgramOptions(api_key="k", base_url=double.ws_url,
                                                        endpointing_ms=DEEPGRAM_ENDPOINTING_MS))
        for run in range(runs + 1):  # the first run warms up imports and the SDK
            stream = await recognizer.open()
            final = asyncio.get_running_loop().create_future()

            async def watch(stream=stream, final=final) -> None:
                async for event in stream.events():
                    if event.kind == "final" and event.end_of_turn and not final.done():
                        final.set_result(time.perf_counter())

            watcher = asyncio.create_task(watch())
            t0 = time.perf_counter()
            for k, frame in enumerate(frames(audio)):
                # A frame leaves once it has been captured: 20 ms after its first sample.
                await asyncio.sleep(max(0.0, t0 + (k + 1) * 0.02 - time.perf_counter()))
                await stream.send(frame)
            received = await asyncio.wait_for(final, 2)
            end_of_speech = t0 + (speech_start_ms + speech_ms) / 1000
            await stream.aclose()
            await watcher
            if run:
                results.append((received - end_of_speech) * 1000)
                connects.append(stream.stats.connect_ms)
    report("deepgram", results, DEEPGRAM_ENDPOINTING_MS + DEEPGRAM_LATENCY_MS,
           f"  (connect p50 {statistics.median(connects):.1f} ms)")


async def bench_claude(runs: int) -> None:
    faults = AnthropicFaults(first_token_ms=CLAUDE_FIRST_TOKEN_MS, token_ms=15)
    results = []
    async with AnthropicDouble(faults=faults) as api:
        model = ClaudeChatModel(api_key="sk", base_url=api.url, max_retries=0)
        await model.load()
        for run in range(runs + 1):
            started = time.perf_counter()
            stream = model.stream(QUESTION, 60)
            await anext(stream)
            elapsed = (time.perf_counter() - started) * 1000
            await stream.aclose()
            if run:
                results.append(elapsed)
        await model.aclose()
    report("claude", results, CLAUDE_FIRST_TOKEN_MS)


async def bench_cartesia(runs: int) -> None:
    faults = CartesiaFaults(first_audio_ms=CARTESIA_FIRST_AUDIO_MS)
    results = []
    async with CartesiaDouble(faults=faults) as double:
        synth = CartesiaSynthesizer(CartesiaOptions(api_key="k", websocket_base_url=double.ws_url))
        started = time.perf_counter()
        await synth.start()
        connect_ms = (time.perf_counter() - started) * 1000
        for run in range(runs + 1):
            started = time.perf_counter()
            first = 0.0
            async for _ in synth.stream(LINE):
                first = first or (time.perf_counter() - started) * 1000
            if run:
                results.append(first)
        await synth.aclose()
    report("cartesia", results, CARTESIA_FIRST_AUDIO_MS, f"  (connect {connect_ms:.1f} ms, cold)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    await bench_deepgram(args.runs)
    await bench_claude(args.runs)
    await bench_cartesia(args.runs)


if __name__ == "__main__":
    asyncio.run(main())
