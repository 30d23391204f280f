"""Prometheus metric families of every service, served on `/metrics`.

Names follow Prometheus conventions (`ringline_` prefix, base units: seconds, `_total` counters).
Labels are bounded: stage, provider, model, reason, kind. Never a call id or a phone number.

Who fills what:
- each service's `MetricsReporter` (contracts.runtime.reporter) fills claims, refusals and
  takeovers (from the claimer's `stage.ready` / `call.refused` / `stage.takeover`), the latency
  histograms, fallbacks, errors, tokens and cost from the call events of its stage;
- `watch_load` (active calls, load, loop lag from a `LoadGauge`) and `watch_nats` read state at
  scrape time, so nothing on the audio path does metrics work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from .load import LoadGauge

# Phone-call latencies: tens of milliseconds (edge) to seconds (a slow model).
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0)

# -- calls: claims from the claimer's events, active calls from the replica's router --------
ACTIVE_CALLS = Gauge("ringline_active_calls", "Calls this replica owns now", ["stage"])
CALLS_CLAIMED = Counter("ringline_calls_claimed_total", "Calls this replica claimed", ["stage"])
CALLS_REFUSED = Counter(
    "ringline_calls_refused_total", "Calls this replica refused to claim (full, loop lag, draining)",
    ["stage", "reason"],
)
CALLS_TAKEN_OVER = Counter(
    "ringline_calls_taken_over_total", "Calls this replica claimed after another replica had served them", ["stage"],
)

# -- latency per stage: the reporter observes these from turn events -------------------------
STT_FINAL = Histogram(
    "ringline_stt_final_seconds", "Caller stopped speaking -> final transcript", ["provider"],
    buckets=_LATENCY_BUCKETS,
)
LLM_FIRST_TOKEN = Histogram(
    "ringline_llm_first_token_seconds", "LLM request -> first token", ["provider"], buckets=_LATENCY_BUCKETS,
)
REPLY_FIRST_CHUNK = Histogram(
    "ringline_reply_first_chunk_seconds", "Final transcript -> first speakable reply chunk", ["provider"],
    buckets=_LATENCY_BUCKETS,
)
TTS_FIRST_AUDIO = Histogram(
    "ringline_tts_first_audio_seconds", "Reply chunk -> first synthesised audio", ["provider"],
    buckets=_LATENCY_BUCKETS,
)
MOUTH_TO_EAR = Histogram(
    "ringline_mouth_to_ear_seconds", "Caller stopped speaking -> the edge wrote the answer's first audio",
    buckets=_LATENCY_BUCKETS,
)
BARGE_IN_REACTION = Histogram(
    "ringline_barge_in_reaction_seconds", "Caller started talking over the agent -> the agent stopped",
    buckets=_LATENCY_BUCKETS,
)
TURNS = Counter("ringline_turns_total", "Turns this stage served", ["stage", "kind"])

# -- providers, tokens, money -----------------------------------------------------------------
FALLBACKS = Counter(
    "ringline_provider_fallbacks_total", "A provider failed over to the next in its chain",
    ["stage", "provider", "to"],
)
PROVIDER_ERRORS = Counter("ringline_provider_errors_total", "Provider requests that failed", ["stage", "provider"])
LLM_TOKENS = Counter("ringline_llm_tokens_total", "LLM tokens consumed", ["model", "kind"])
STT_AUDIO = Counter("ringline_stt_audio_seconds_total", "Seconds of caller audio recognised", ["provider"])
TTS_CHARACTERS = Counter("ringline_tts_characters_total", "Characters of text synthesised", ["provider"])
COST = Counter(
    "ringline_cost_total", "Provider spend, in the price table's currency (provider: the LLM's model)",
    ["stage", "provider", "currency"],
)

# -- process health ---------------------------------------------------------------------------
LOOP_LAG = Gauge("ringline_event_loop_lag_seconds", "How late the event loop wakes up for a timer (smoothed)")
LOAD = Gauge("ringline_load_ratio", "Load of this replica: 1 at max_calls or at the loop-lag limit", ["stage"])


def watch_active_calls(stage: str, count: Callable[[], int]) -> None:
    """Report `count()` (the calls this replica owns) as `ringline_active_calls{stage}` at scrape time."""
    ACTIVE_CALLS.labels(stage=stage).set_function(count)


def watch_load(stage: str, gauge: LoadGauge, count: Callable[[], int]) -> None:
    """Active calls, load and loop lag of one stage, read from its `LoadGauge` at scrape time."""
    watch_active_calls(stage, count)
    LOAD.labels(stage=stage).set_function(lambda: gauge.load(count()))
    LOOP_LAG.set_function(lambda: gauge.lag_s)


class _NatsCollector(Collector):
    """`ringline_nats_reconnects_total`, read from each watched client's own statistics."""

    def __init__(self) -> None:
        self.brokers: dict[str, Any] = {}

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily("ringline_nats_reconnects", "Reconnections to NATS", labels=["service"])
        for service, broker in self.brokers.items():
            client = getattr(broker, "_connection", None)
            stats = getattr(client, "stats", None) or {}
            family.add_metric([service], float(stats.get("reconnects", 0)))
        yield family

    def describe(self) -> Iterable[CounterMetricFamily]:
        return []


_NATS = _NatsCollector()
REGISTRY.register(_NATS)


def watch_nats(service: str, broker: Any) -> None:
    """Count the reconnections of `broker`'s NATS client (a FastStream NatsBroker)."""
    _NATS.brokers[service] = broker


def exposition() -> tuple[bytes, str]:
    """The `/metrics` body and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
