"""One metrics reporter per service: it observes the call events its stage publishes.

Stages already publish what they did on `call.<id>.event` (a recognised utterance, a generated
turn, a synthesised turn, the first audio the caller heard...), with timings and usage, for the
call record. The reporter turns the same events into Prometheus families, so no decision code
does metrics work (STYLE 12).

Each service's reporter subscribes through a queue group named after the service: of N
replicas of a stage exactly one counts each event, and the sums over pods stay right.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from faststream.nats import NatsBroker

from .. import events, subjects
from ..messages import CallEvent
from ..pricing import PriceTable, Usage, load_prices, usage_cost
from . import metrics as m

log = logging.getLogger("ringline.metrics")

_REMEMBERED_CLAIMS = 10_000
STT_FALLBACK = "stt.fallback"  # services/stt/cloud.py: Deepgram handed the call to local Whisper


class MetricsReporter:
    """Turns the events of `stage` into metrics. `observe(event)` is the whole interface."""

    def __init__(self, stage: str, prices: PriceTable | None = None) -> None:
        self.stage = stage
        self.prices = prices or load_prices()
        handlers: dict[str, dict[str, Callable[[CallEvent], None]]] = {
            "telephony": {events.TURN_FIRST_AUDIO: self._first_audio},
            "stt": {events.STT_UTTERANCE: self._utterance, STT_FALLBACK: self._stt_fallback},
            "brain": {
                events.TURN_LLM: self._turn_llm, events.LLM_USAGE: self._usage_only,
                events.LLM_WARMUP: self._usage_only, events.TURN_BARGE_IN: self._barge_in,
            },
            "tts": {events.TTS_TURN: self._tts_turn, events.TTS_ERROR: self._tts_error},
        }
        ownership: dict[str, Callable[[CallEvent], None]] = {
            events.STAGE_READY: self._ready, events.CALL_REFUSED: self._refused, events.STAGE_TAKEOVER: self._takeover,
        }
        self._handlers = {**ownership, **handlers.get(stage, {})}
        self._claimed: OrderedDict[tuple[str, str], None] = OrderedDict()  # (call, replica) already counted

    def subscribe(self, broker: NatsBroker) -> None:
        """Observe every call's events (one replica of this service per event)."""

        async def on_event(event: CallEvent) -> None:
            self.observe(event)

        broker.subscriber(subjects.EVENT_WILDCARD, queue=f"metrics-{self.stage}")(on_event)

    def observe(self, event: CallEvent) -> None:
        handler = self._handlers.get(event.name)
        if handler is None:
            return
        try:
            handler(event)
        except Exception:  # a malformed event must not take the reporter down
            log.warning("metrics: could not read %s event of call %s", event.name, event.call_id, exc_info=True)

    # -- ownership (the claimer's events; a replica counts only its own stage's) -------------------

    def _ready(self, event: CallEvent) -> None:
        if event.data.get("stage") != self.stage:
            return
        key = (event.call_id, str(event.data.get("replica", "")))
        if key in self._claimed:  # said again for a stage that subscribed late (`stage.query`)
            return
        self._claimed[key] = None
        if len(self._claimed) > _REMEMBERED_CLAIMS:
            self._claimed.popitem(last=False)
        m.CALLS_CLAIMED.labels(stage=self.stage).inc()

    def _refused(self, event: CallEvent) -> None:
        if event.data.get("stage") == self.stage:
            m.CALLS_REFUSED.labels(stage=self.stage, reason=refusal_kind(str(event.data.get("reason", "")))).inc()

    def _takeover(self, event: CallEvent) -> None:
        if event.data.get("stage") == self.stage:
            m.CALLS_TAKEN_OVER.labels(stage=self.stage).inc()

    # -- telephony -----------------------------------------------------------------------------

    def _first_audio(self, event: CallEvent) -> None:
        timing = event.timing
        if timing is None:
            return
        # A greeting has no caller speech before it; only answers measure mouth-to-ear.
        kind = "answer" if timing.speech_ended_at else "greeting"
        m.TURNS.labels(stage=self.stage, kind=kind).inc()
        if timing.speech_ended_at and timing.edge_sent_at:
            m.MOUTH_TO_EAR.observe(max(0.0, timing.edge_sent_at - timing.speech_ended_at))

    # -- stt -------------------------------------------------------------------------------------

    def _utterance(self, event: CallEvent) -> None:
        timing = event.timing
        provider = (timing.stt_provider if timing else "") or "unknown"
        m.TURNS.labels(stage=self.stage, kind="utterance").inc()
        if timing and timing.speech_ended_at and timing.transcript_at:
            m.STT_FINAL.labels(provider=provider).observe(max(0.0, timing.transcript_at - timing.speech_ended_at))
        usage = _usage(event.data.get("usage"))
        if usage is not None:
            if usage.stt_seconds:
                m.STT_AUDIO.labels(provider=usage.stt_provider or provider).inc(usage.stt_seconds)
            self._cost(usage)

    def _stt_fallback(self, event: CallEvent) -> None:
        self._fallbacks([event.data])

    # -- brain -----------------------------------------------------------------------------------

    def _turn_llm(self, event: CallEvent) -> None:
        data, timing = event.data, event.timing
        provider = str(data.get("provider") or (timing.llm_provider if timing else "") or "unknown")
        m.TURNS.labels(stage=self.stage, kind=str(data.get("outcome") or "answer")).inc()
        first_token_ms = data.get("first_token_ms")
        if isinstance(first_token_ms, int | float) and first_token_ms > 0:
            m.LLM_FIRST_TOKEN.labels(provider=provider).observe(first_token_ms / 1000)
        if timing and timing.transcript_at and timing.first_chunk_at:
            waited = max(0.0, timing.first_chunk_at - timing.transcript_at)
            m.REPLY_FIRST_CHUNK.labels(provider=provider).observe(waited)
        self._fallbacks(data.get("fallbacks") or [])
        if data.get("error"):
            m.PROVIDER_ERRORS.labels(stage=self.stage, provider=provider).inc()
        self._usage_only(event)

    def _usage_only(self, event: CallEvent) -> None:
        usage = _usage(event.data.get("usage"))
        if usage is None:
            return
        model = usage.llm_model or "unknown"
        for kind, count in (("input", usage.input_tokens), ("output", usage.output_tokens),
                            ("cache_read", usage.cache_read_input_tokens),
                            ("cache_write", usage.cache_creation_input_tokens)):
            if count:
                m.LLM_TOKENS.labels(model=model, kind=kind).inc(count)
        self._cost(usage)

    def _barge_in(self, event: CallEvent) -> None:
        reaction_ms = event.data.get("reaction_ms")
        if isinstance(reaction_ms, int | float) and reaction_ms >= 0:
            m.BARGE_IN_REACTION.observe(reaction_ms / 1000)

    # -- tts -------------------------------------------------------------------------------------

    def _tts_turn(self, event: CallEvent) -> None:
        data = event.data
        provider = str(data.get("provider") or "unknown")
        m.TURNS.labels(stage=self.stage, kind="interrupted" if data.get("interrupted") else "spoken").inc()
        first_audio_ms = data.get("first_audio_ms")
        if isinstance(first_audio_ms, int | float) and first_audio_ms >= 0:
            m.TTS_FIRST_AUDIO.labels(provider=provider).observe(first_audio_ms / 1000)
        self._fallbacks(data.get("fallbacks") or [])
        for raw in data.get("usages") or []:
            usage = _usage(raw)
            if usage is not None:
                if usage.tts_characters:
                    m.TTS_CHARACTERS.labels(provider=usage.tts_provider or provider).inc(usage.tts_characters)
                self._cost(usage)

    def _tts_error(self, event: CallEvent) -> None:
        m.PROVIDER_ERRORS.labels(stage=self.stage, provider=str(event.data.get("provider") or "unknown")).inc()

    # -- shared ----------------------------------------------------------------------------------

    def _fallbacks(self, fallbacks: list[Any]) -> None:
        """Every fall-through: the provider it left failed (an error, a timeout, a cooldown)."""
        for fallback in fallbacks:
            if not isinstance(fallback, Mapping):
                continue
            source, target = str(fallback.get("from") or "unknown"), str(fallback.get("to") or "none")
            m.FALLBACKS.labels(stage=self.stage, provider=source, to=target).inc()
            m.PROVIDER_ERRORS.labels(stage=self.stage, provider=source).inc()

    def _cost(self, usage: Usage) -> None:
        cost = usage_cost(usage, self.prices)
        for stage, provider, amount in (("stt", usage.stt_provider, cost.stt),
                                        ("llm", usage.llm_model, cost.llm),
                                        ("tts", usage.tts_provider, cost.tts)):
            if amount > 0:
                m.COST.labels(stage=stage, provider=provider, currency=cost.currency).inc(amount)


def refusal_kind(reason: str) -> str:
    """A bounded label for a refusal reason ("at max_calls 20" -> "max_calls")."""
    for kind in ("max_calls", "loop lag", "draining"):
        if kind in reason:
            return kind.replace(" ", "_")
    return "other"


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        return Usage.model_validate(raw)
    except ValueError:
        return None
