"""cloud-sim: the Deepgram, Claude and Cartesia protocol doubles (tests/doubles) with the vendors'
published latencies, each served by its own process so the doubles' CPU is not the pipeline's.

  deepgram   final transcript 250 ms after the end of speech (endpointing 200 ms + 50 ms late)
  claude     first token 350 ms after the request, then a text delta every 15 ms
  cartesia   first audio 100 ms after a context's first text

    python -m ringline.loadbench.sim deepgram|claude|cartesia   # prints its URL, serves until stdin closes
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DEEPGRAM_ENDPOINTING_MS, DEEPGRAM_LATENCY_MS = 200, 50
CLAUDE_FIRST_TOKEN_MS, CLAUDE_TOKEN_MS = 350, 15
CARTESIA_FIRST_AUDIO_MS = 100
PUBLISHED_MS = DEEPGRAM_ENDPOINTING_MS + DEEPGRAM_LATENCY_MS + CLAUDE_FIRST_TOKEN_MS + CARTESIA_FIRST_AUDIO_MS
QUESTIONS = (
    "What is the capital of France?",
    "How many days are there in a week?",
    "How do I boil an egg?",
    "What is two plus two?",
    "What's the tallest mountain in the world?",
    "Give me one tip for a job interview.",
)
REPLY = "Happy to help with that. Here is the short answer you asked for."
DOUBLES = ("deepgram", "claude", "cartesia")


def load_doubles() -> None:
    """tests/doubles of this checkout as the package `doubles` (cloud-sim needs a source checkout)."""
    if "doubles" in sys.modules:
        return
    folder = Path(__file__).resolve().parents[2] / "tests" / "doubles"
    if not (folder / "__init__.py").is_file():
        raise RuntimeError(f"--providers cloud-sim needs the protocol doubles of a source checkout ({folder})")
    spec = importlib.util.spec_from_file_location("doubles", folder / "__init__.py",
                                                  submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["doubles"] = module
    spec.loader.exec_module(module)


def streaming_ms() -> int:
    """Claude's text deltas after the first token until the reply's first sentence is complete."""
    load_doubles()
    from doubles.anthropic import text_pieces

    pieces = text_pieces(REPLY)
    for count in range(1, len(pieces) + 1):
        if re.search(r"[.!?]\s", "".join(pieces[:count])):
            return (count - 1) * CLAUDE_TOKEN_MS
    return (len(pieces) - 1) * CLAUDE_TOKEN_MS


def injected_ms() -> int:
    """Provider time in every reply's mouth-to-ear: what is left is Ringline's own overhead."""
    return PUBLISHED_MS + streaming_ms()


def _double(name: str):
    load_doubles()
    from doubles import (
        AnthropicDouble,
        AnthropicFaults,
        CartesiaDouble,
        CartesiaFaults,
        DeepgramDouble,
        DeepgramFaults,
    )

    if name == "deepgram":
        script = [QUESTIONS[i % len(QUESTIONS)] for i in range(200_000)]
        return DeepgramDouble(script=script, faults=DeepgramFaults(latency_ms=DEEPGRAM_LATENCY_MS))
    if name == "claude":
        return AnthropicDouble(default_reply=REPLY, faults=AnthropicFaults(first_token_ms=CLAUDE_FIRST_TOKEN_MS,
                                                                           token_ms=CLAUDE_TOKEN_MS))
    return CartesiaDouble(faults=CartesiaFaults(first_audio_ms=CARTESIA_FIRST_AUDIO_MS))


async def _serve(name: str) -> None:
    double = _double(name)
    async with double:
        url = double.ws_url if name != "claude" else double.url
        print(json.dumps({"url": url}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes stdin


@contextmanager
def cloud_sim() -> Iterator[tuple[dict[str, str], dict[str, subprocess.Popen]]]:
    """The three doubles in their own processes; yields the services' environment and the processes."""
    procs = {name: subprocess.Popen([sys.executable, "-m", "ringline.loadbench.sim", name], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True) for name in DOUBLES}
    try:
        urls = {name: json.loads(proc.stdout.readline())["url"] for name, proc in procs.items()}  # type: ignore[union-attr]
        env = {
            "RINGLINE_STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": "bench",
            "RINGLINE_STT_DEEPGRAM_BASE_URL": urls["deepgram"],
            "RINGLINE_STT_DEEPGRAM_ENDPOINTING_MS": str(DEEPGRAM_ENDPOINTING_MS),
            "ANTHROPIC_API_KEY": "bench", "RINGLINE_BRAIN_ANTHROPIC_BASE_URL": urls["claude"],
            "CARTESIA_API_KEY": "bench", "RINGLINE_TTS_CARTESIA_WEBSOCKET_URL": urls["cartesia"],
        }
        yield env, procs
    finally:
        for proc in procs.values():
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
