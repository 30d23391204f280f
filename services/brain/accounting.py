"""What one agent turn's LLM requests consumed and which providers served them (pure, no I/O).

A turn makes one request per round (more when it uses tools); each leaves a `StreamStats`. The
turn's `turn.llm` event carries the usage of the model that served it as `data["usage"]`
(a `contracts.pricing.Usage`, summed over rounds); any other model that consumed tokens in the
same turn (a later round served by a fallback, a stream cut off before its first token) gets its
own `llm.usage` event, so the memory service prices everything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from opentelemetry import trace

from ringline.contracts.pricing import Usage

from .llm.base import StreamStats


def stream_usages(stats: StreamStats) -> list[Usage]:
    """The stream's own usage, then what failed attempts in it consumed."""
    own = stats.usage()
    return [*([own] if own is not None else []), *stats.extra.get("failed_usage", [])]


def merge_usages(usages: Iterable[Usage]) -> list[Usage]:
    """One `Usage` per model, in order of first appearance."""
    merged: dict[str, Usage] = {}
    for usage in usages:
        seen = merged.get(usage.llm_model)
        if seen is None:
            merged[usage.llm_model] = usage
            continue
        merged[usage.llm_model] = Usage(
            llm_model=usage.llm_model,
            input_tokens=seen.input_tokens + usage.input_tokens,
            output_tokens=seen.output_tokens + usage.output_tokens,
            cache_read_input_tokens=seen.cache_read_input_tokens + usage.cache_read_input_tokens,
            cache_creation_input_tokens=seen.cache_creation_input_tokens + usage.cache_creation_input_tokens,
        )
    return list(merged.values())


def turn_usages(rounds: Sequence[StreamStats]) -> list[Usage]:
    """The turn's usage per model; the model that served its first round comes first."""
    usages = [u for stats in rounds for u in stream_usages(stats)]
    served = (rounds[0].price_id or rounds[0].model) if rounds else ""
    usages.sort(key=lambda u: u.llm_model != served)  # stable: the rest keep their order
    return merge_usages(usages)


def turn_fallbacks(rounds: Sequence[StreamStats]) -> list[dict[str, Any]]:
    return [f for stats in rounds for f in stats.extra.get("fallbacks", [])]


def usage_data(usage: Usage) -> dict[str, Any]:
    return usage.model_dump(exclude_defaults=True)


def llm_report(rounds: Sequence[StreamStats]) -> dict[str, Any]:
    """The `turn.llm` event's `usage`, and for a chain its `fallbacks` and `route`."""
    data: dict[str, Any] = {}
    usages = turn_usages(rounds)
    if usages:
        data["usage"] = usage_data(usages[0])
    first = rounds[0].extra if rounds else {}
    if "route" in first:  # a chain served the turn
        data["fallbacks"] = turn_fallbacks(rounds)
        data["route"] = first["route"]
    return data


def trace_stream(span: trace.Span, stats: StreamStats) -> None:
    """Which provider served a request, and every fall-through, on its span."""
    span.set_attribute("llm.provider", stats.provider)
    span.set_attribute("llm.model", stats.model)
    if "route" in stats.extra:
        span.set_attribute("llm.route", str(stats.extra["route"]))
    fallbacks = stats.extra.get("fallbacks", [])
    span.set_attribute("llm.fallbacks", len(fallbacks))
    for fallback in fallbacks:
        span.add_event("llm.fallback", {
            "from": str(fallback["from"]), "to": str(fallback["to"]),
            "reason": str(fallback["reason"]), "ms": float(fallback["ms"]),
        })
    usage = stats.usage()
    if usage is not None:
        span.set_attribute("llm.input_tokens", usage.input_tokens)
        span.set_attribute("llm.output_tokens", usage.output_tokens)
        span.set_attribute("llm.cache_read_input_tokens", usage.cache_read_input_tokens)
        span.set_attribute("llm.cache_creation_input_tokens", usage.cache_creation_input_tokens)
