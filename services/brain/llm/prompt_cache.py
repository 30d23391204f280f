"""Where Claude's prompt-cache breakpoints go, so that caching pays.

A breakpoint caches the request's prefix up to it (tools, then system, then messages). It only
takes when that prefix is at least the model's minimum cacheable length (Haiku 4.5: 4,096 tokens;
under it the API silently caches nothing), a cache write costs 1.25x the input price and a read
0.1x, and a change anywhere before a breakpoint misses it. So:

- the stable part (tools + the call's first system message, the persona) gets a breakpoint only
  when it is long enough to be cached at all;
- what changes during a call (later system messages: caller memory, call notes) goes after that
  breakpoint, in a block of its own, so a new note does not throw the persona's cache away;
- once the conversation itself is long enough, a second breakpoint at the end of the history
  before the caller's newest words lets the next turn read all of it from the cache.

Token counts are estimated from characters (~3.5 a token for English and JSON, on the high side
of the ~4 measured for chat text), so a prefix near the minimum may be tried and not cached:
that costs nothing extra, the API just does not cache it.
"""

from __future__ import annotations

import json
import math
from typing import Any

EPHEMERAL = {"type": "ephemeral"}
CHARS_PER_TOKEN = 3.5

# Minimum cacheable prompt length by model family (Anthropic's prompt-caching docs; Sonnet 4.6 is
# documented at 1,024 but reported to cache only from 2,048, so 2,048 here).
MIN_CACHE_TOKENS = {
    "claude-haiku-4-5": 4096,
    "claude-opus-4-5": 4096,
    "claude-opus-4-6": 4096,
    "claude-sonnet-4-6": 2048,
    "claude-sonnet-4-5": 1024,
    "claude-sonnet-4": 1024,
    "claude-opus-4-1": 1024,
    "claude-opus-4": 1024,
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
}
UNKNOWN_MODEL_MIN = 4096


def minimum_tokens(model: str) -> int:
    """The model's minimum cacheable prefix (the longest matching family name wins)."""
    matches = [name for name in MIN_CACHE_TOKENS if model.startswith(name)]
    return MIN_CACHE_TOKENS[max(matches, key=len)] if matches else UNKNOWN_MODEL_MIN


def estimate_tokens(value: Any) -> int:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def place_breakpoints(model: str, tools: list[dict[str, Any]], stable: str, changing: str,
                      turns: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The request's `system` blocks and `messages`, with breakpoints only where they pay."""
    minimum = minimum_tokens(model)
    prefix = estimate_tokens(tools) if tools else 0
    system: list[dict[str, Any]] = []
    if stable:
        prefix += estimate_tokens(stable)
        block: dict[str, Any] = {"type": "text", "text": stable}
        if prefix >= minimum:
            block["cache_control"] = EPHEMERAL
        system.append(block)
    if changing:
        prefix += estimate_tokens(changing)
        system.append({"type": "text", "text": changing})
    if len(turns) < 2:
        return system, turns
    history = prefix + sum(estimate_tokens(t["content"]) for t in turns[:-1])
    if history < minimum:
        return system, turns
    marked = dict(turns[-2])
    content = marked["content"]
    blocks: list[dict[str, Any]] = ([{"type": "text", "text": content}] if isinstance(content, str)
                                    else [dict(b) for b in content])
    blocks[-1] = {**blocks[-1], "cache_control": EPHEMERAL}
    marked["content"] = blocks
    return system, [*turns[:-2], marked, turns[-1]]
