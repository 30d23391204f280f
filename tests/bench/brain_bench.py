"""Brain latency on the local model: first token, first speakable chunk, tokens per second, and
what preemptive generation saves.

    .venv/bin/python tests/bench/brain_bench.py [--rounds 1] [--threads 2] [--max-tokens 60] [--old-clause-words 4]
                                                [--gaps 0.15,0.3] [--no-preemptive]

Each prompt is asked as the first caller turn of a call (system prompt + greeting + question),
the way `BrainSession` asks it, and streamed through the real `SentenceChunker`.

Preemptive generation is measured through the whole brain service (in-memory broker, real local
model): the interim transcript arrives, then the final `gap` seconds later with the same words;
the number is final transcript -> first reply chunk published, with the setting off and on. The
STT here sends its interim at ~160-200 ms of silence and the final at 500-600 ms, so the gap is
about 0.3 s minus the early decode's time. One run on a shared 2-core box: noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from ringline.services.brain.chunker import SentenceChunker
from ringline.services.brain.llm.base import StreamStats, build_chat_model
from ringline.services.brain.phrases import is_caller_goodbye
from ringline.services.brain.settings import BrainSettings

PROMPTS = [
    "What is the capital of France?",
    "Are you a real person?",
    "What time is it in Tokyo when it's noon in London?",
    "Can you recommend a good book?",
    "How do I reset my password?",
    "Tell me a joke.",
    "What's the weather usually like in Seattle?",
    "I'd like to book a table for two tonight.",
    "How far is the moon?",
    "Thanks, that's all. Goodbye!",
]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def run(rounds: int, threads: int, max_tokens: int, old_clause_words: int) -> None:
    settings = BrainSettings(provider="local", llama_threads=threads, max_reply_tokens=max_tokens)
    model = build_chat_model(settings)
    started = time.perf_counter()
    await model.load()
    print(f"load (join check + llama init + system prompt warm-up): {time.perf_counter() - started:.2f}s")

    first_token, first_chunk, old_first_chunk, rates, totals, tokens = [], [], [], [], [], []
    for _ in range(rounds):
        for prompt in PROMPTS:
            messages = [
                {"role": "system", "content": settings.persona},
                {"role": "assistant", "content": settings.greeting},
                {"role": "user", "content": prompt},
            ]
            stats, chunker = StreamStats(), SentenceChunker(settings.first_clause_words)
            old = SentenceChunker(old_clause_words)  # the same tokens, the old first-chunk rule
            chunk_at, old_at, chunks = 0.0, 0.0, []
            async for piece in model.stream(messages, max_tokens, stats=stats):
                out = chunker.push(piece)
                if out and not chunk_at:
                    chunk_at = time.time()
                if old.push(piece) and not old_at:
                    old_at = time.time()
                chunks += out
            chunks += chunker.flush()
            chunk_at = chunk_at or stats.ended_at
            first_token.append(stats.first_token_ms)
            first_chunk.append((chunk_at - stats.started_at) * 1000)
            old_first_chunk.append(((old_at or stats.ended_at) - stats.started_at) * 1000)
            totals.append(stats.total_ms)
            tokens.append(stats.tokens)
            decode_s = stats.ended_at - stats.first_token_at
            if stats.tokens > 1 and decode_s > 0:
                rates.append((stats.tokens - 1) / decode_s)
            print(f"  {stats.first_token_ms:6.0f} ms ttft {first_chunk[-1]:6.0f} ms 1st chunk "
                  f"{stats.tokens:3d} tok  {prompt!r} -> {' | '.join(chunks)!r}")
    await model.aclose()

    print(f"\n{len(first_token)} replies, {threads} thread(s), max_tokens={max_tokens}")
    old_name = f"old 1st chunk ({old_clause_words} w)"
    for name, values in [("first token ms", first_token), ("first chunk ms", first_chunk),
                         (old_name, old_first_chunk), ("total ms", totals)]:
        print(f"{name:>15}: p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  max {max(values):7.1f}")
    print(f"{'first chunk new/old':>15}: p50 {pct(first_chunk, 50) / pct(old_first_chunk, 50):.2f} "
          f"(a first chunk may end at a comma after {settings.first_clause_words} word(s), not {old_clause_words})")
    print(f"{'tokens/s':>15}: p50 {pct(rates, 50):7.1f}  mean {statistics.mean(rates):7.1f}  "
          f"(decode, after the first token); mean reply {statistics.mean(tokens):.1f} tokens")


async def first_chunk_after_final(model: Any, prompt: str, interim: str, gap_s: float, preemptive: bool) -> float:
    """One call through the brain service: ms from the final transcript to the first reply chunk."""
    from faststream.nats import TestNatsBroker

    from ringline.contracts import subjects
    from ringline.contracts.messages import CallEnd, CallEvent, CallStart, Playback, ReplyChunk, Transcript, make_mark
    from ringline.contracts.runtime import STAGE_READY
    from ringline.services.brain.app import create_app

    settings = BrainSettings(provider="local", preemptive_generation=preemptive, tts_ready_timeout_s=0.5,
                             llm_first_token_timeout_s=30.0, silence_reprompt_s=0)
    app = create_app(settings, model=model)
    chunks: list[ReplyChunk] = []
    got = asyncio.Event()

    @app.broker.subscriber(subjects.REPLY_PATTERN)
    async def on_reply(chunk: ReplyChunk) -> None:
        chunks.append(chunk)
        if chunk.kind == "answer" and chunk.text:
            got.set()

    call_id = f"bench-{time.monotonic_ns()}"
    async with TestNatsBroker(app.broker) as broker:
        await broker.publish(CallStart(call_id=call_id), subjects.CALLS_START)
        await broker.publish(CallEvent(call_id=call_id, name=STAGE_READY, data={"stage": "tts"}),
                             subjects.event(call_id))
        while not chunks:
            await asyncio.sleep(0.01)
        greeting = chunks[0]
        await broker.publish(Playback(call_id=call_id, mark=make_mark(greeting.turn_id, 0), turn_id=greeting.turn_id),
                             subjects.playback(call_id))
        ended = time.time()
        await broker.publish(Transcript(call_id=call_id, utterance_id="u1", text=interim, is_final=False,
                                        end_of_turn=False, speech_ended_at=ended), subjects.transcript(call_id))
        await asyncio.sleep(gap_s)
        final = Transcript(call_id=call_id, utterance_id="u1", text=prompt, speech_ended_at=ended)
        await broker.publish(final, subjects.transcript(call_id))
        await asyncio.wait_for(got.wait(), 60)
        first = next(c for c in chunks if c.kind == "answer" and c.text)
        await broker.publish(CallEnd(call_id=call_id), subjects.CALLS_END)
    await asyncio.sleep(0.2)  # let the cancelled generation leave the model's worker
    return (first.timing.first_chunk_at - final.emitted_at) * 1000


async def same_cache(model: Any, settings: BrainSettings) -> None:
    """Leave llama.cpp's prompt cache holding only the shared prefix (persona + greeting), so no
    measured call profits from the one before it having asked the same question."""
    messages = [{"role": "system", "content": settings.persona},
                {"role": "assistant", "content": settings.greeting},
                {"role": "user", "content": "Hello."}]
    async for _ in model.stream(messages, 1):
        pass


async def run_preemptive(rounds: int, threads: int, gaps: list[float]) -> None:
    settings = BrainSettings(provider="local", llama_threads=threads)
    model = build_chat_model(settings)
    await model.load()

    async def measure(prompt: str, interim: str, gap: float, preemptive: bool) -> float:
        await same_cache(model, settings)
        return await first_chunk_after_final(model, prompt, interim, gap, preemptive)

    print("\npreemptive generation: final transcript -> first reply chunk (ms), through the service")
    for gap in gaps:
        rows: dict[str, list[float]] = {"off": [], "on, same words": [], "on, words changed": []}
        for _ in range(rounds):
            for prompt in PROMPTS:
                if is_caller_goodbye(prompt):
                    continue  # answered with the canned goodbye: no LLM to start early
                rows["off"].append(await measure(prompt, prompt, gap, False))
                rows["on, same words"].append(await measure(prompt, prompt, gap, True))
                cut = " ".join(prompt.split()[:-1]) or prompt
                rows["on, words changed"].append(await measure(prompt, cut, gap, True))
        print(f"  interim -> final gap {gap * 1000:.0f} ms, {len(rows['off'])} prompts:")
        for name, values in rows.items():
            print(f"    {name:>18}: p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  mean "
                  f"{statistics.mean(values):7.1f}")
        saved = [a - b for a, b in zip(rows["off"], rows["on, same words"], strict=True)]
        print(f"    {'saved (same words)':>18}: p50 {pct(saved, 50):7.1f}  mean {statistics.mean(saved):7.1f}")
    await model.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=60)
    parser.add_argument("--gaps", default="0.15,0.3", help="interim -> final gaps in seconds, comma-separated")
    parser.add_argument("--no-preemptive", action="store_true", help="skip the preemptive generation runs")
    parser.add_argument("--old-clause-words", type=int, default=4,
                        help="the old first-chunk rule, timed on the same tokens (RINGLINE_BRAIN_FIRST_CLAUSE_WORDS)")
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.threads, args.max_tokens, args.old_clause_words))
    if not args.no_preemptive:
        gaps = [float(g) for g in args.gaps.split(",") if g.strip()]
        asyncio.run(run_preemptive(args.rounds, args.threads, gaps))


if __name__ == "__main__":
    main()
