"""Brain latency on the local model: first token, first speakable chunk, tokens per second.

    .venv/bin/python tests/bench/brain_bench.py [--rounds 1] [--threads 1] [--max-tokens 60]

Each prompt is asked as the first caller turn of a call (system prompt + greeting + question),
the way `BrainSession` asks it, and streamed through the real `SentenceChunker`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from ringline.services.brain.chunker import SentenceChunker
from ringline.services.brain.llm.base import StreamStats, build_chat_model
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


async def run(rounds: int, threads: int, max_tokens: int) -> None:
    settings = BrainSettings(provider="local", llama_threads=threads, max_reply_tokens=max_tokens)
    model = build_chat_model(settings)
    started = time.perf_counter()
    await model.load()
    print(f"load (join check + llama init + system prompt warm-up): {time.perf_counter() - started:.2f}s")

    first_token, first_chunk, rates, totals, tokens = [], [], [], [], []
    for _ in range(rounds):
        for prompt in PROMPTS:
            messages = [
                {"role": "system", "content": settings.persona},
                {"role": "assistant", "content": settings.greeting},
                {"role": "user", "content": prompt},
            ]
            stats, chunker = StreamStats(), SentenceChunker()
            chunk_at, chunks = 0.0, []
            async for piece in model.stream(messages, max_tokens, stats=stats):
                out = chunker.push(piece)
                if out and not chunk_at:
                    chunk_at = time.time()
                chunks += out
            chunks += chunker.flush()
            chunk_at = chunk_at or stats.ended_at
            first_token.append(stats.first_token_ms)
            first_chunk.append((chunk_at - stats.started_at) * 1000)
            totals.append(stats.total_ms)
            tokens.append(stats.tokens)
            decode_s = stats.ended_at - stats.first_token_at
            if stats.tokens > 1 and decode_s > 0:
                rates.append((stats.tokens - 1) / decode_s)
            print(f"  {stats.first_token_ms:6.0f} ms ttft {first_chunk[-1]:6.0f} ms 1st chunk "
                  f"{stats.tokens:3d} tok  {prompt!r} -> {' | '.join(chunks)!r}")
    await model.aclose()

    print(f"\n{len(first_token)} replies, {threads} thread(s), max_tokens={max_tokens}")
    for name, values in [("first token ms", first_token), ("first chunk ms", first_chunk), ("total ms", totals)]:
        print(f"{name:>15}: p50 {pct(values, 50):7.1f}  p95 {pct(values, 95):7.1f}  max {max(values):7.1f}")
    print(f"{'tokens/s':>15}: p50 {pct(rates, 50):7.1f}  mean {statistics.mean(rates):7.1f}  "
          f"(decode, after the first token); mean reply {statistics.mean(tokens):.1f} tokens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-tokens", type=int, default=60)
    args = parser.parse_args()
    asyncio.run(run(args.rounds, args.threads, args.max_tokens))


if __name__ == "__main__":
    main()
