"""What an operator scrapes from `/metrics` after a call: each stage's events, as metric families."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ringline.contracts import events
from ringline.contracts.messages import CallEvent, TurnTiming
from ringline.contracts.runtime.load import LoadGauge
from ringline.contracts.runtime.metrics import exposition, watch_load
from ringline.contracts.runtime.reporter import MetricsReporter

pytestmark = pytest.mark.unit

T0 = 1_000.0  # the caller stops speaking


def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = exposition()
    assert content_type.startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def grew(before: dict, after: dict, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def one_answer() -> list[tuple[str, CallEvent]]:
    """The events one answered question publishes, stage by stage (as services/* build them)."""
    call = "CA0001"
    return [
        ("stt", CallEvent(call_id=call, name=events.STT_UTTERANCE, turn_id="u1",
                          timing=TurnTiming(speech_ended_at=T0, transcript_at=T0 + 0.25, stt_provider="deepgram"),
                          data={"usage": {"stt_provider": "deepgram", "stt_seconds": 3.0}})),
        ("brain", CallEvent(call_id=call, name=events.TURN_LLM, turn_id="a1",
                            timing=TurnTiming(speech_ended_at=T0, transcript_at=T0 + 0.25, first_chunk_at=T0 + 0.7),
                            data={"provider": "anthropic", "first_token_ms": 350.0, "outcome": "answer",
                                  "usage": {"llm_model": "claude-haiku-4-5", "input_tokens": 900,
                                            "output_tokens": 40},
                                  "fallbacks": [{"from": "anthropic:claude-haiku-4-5", "to": "local",
                                                 "reason": "timeout"}]})),
        ("tts", CallEvent(call_id=call, name=events.TTS_TURN, turn_id="a1",
                          data={"provider": "cartesia", "first_audio_ms": 100.0,
                                "usages": [{"tts_provider": "cartesia", "tts_characters": 60}]})),
        ("telephony", CallEvent(call_id=call, name=events.TURN_FIRST_AUDIO, turn_id="a1",
                                timing=TurnTiming(speech_ended_at=T0, edge_sent_at=T0 + 0.82))),
        ("brain", CallEvent(call_id=call, name=events.TURN_BARGE_IN, turn_id="a1", data={"reaction_ms": 180.0})),
    ]


def test_one_answered_turn_shows_in_every_stage_latency_and_cost() -> None:
    reporters = {stage: MetricsReporter(stage) for stage in ("telephony", "stt", "brain", "tts", "memory")}
    before = scrape()
    for _, event in one_answer():
        for reporter in reporters.values():  # every service sees every event; each counts only its own
            reporter.observe(event)
    after = scrape()

    assert grew(before, after, "ringline_mouth_to_ear_seconds_count") == 1
    assert grew(before, after, "ringline_mouth_to_ear_seconds_sum") == pytest.approx(0.82)
    assert grew(before, after, "ringline_stt_final_seconds_sum", provider="deepgram") == pytest.approx(0.25)
    assert grew(before, after, "ringline_llm_first_token_seconds_sum", provider="anthropic") == pytest.approx(0.35)
    assert grew(before, after, "ringline_reply_first_chunk_seconds_sum", provider="anthropic") == pytest.approx(0.45)
    assert grew(before, after, "ringline_tts_first_audio_seconds_sum", provider="cartesia") == pytest.approx(0.1)
    assert grew(before, after, "ringline_barge_in_reaction_seconds_count") == 1
    assert grew(before, after, "ringline_llm_tokens_total", model="claude-haiku-4-5", kind="input") == 900
    assert grew(before, after, "ringline_llm_tokens_total", model="claude-haiku-4-5", kind="output") == 40
    assert grew(before, after, "ringline_provider_fallbacks_total", stage="brain",
                provider="anthropic:claude-haiku-4-5", to="local") == 1
    assert grew(before, after, "ringline_stt_audio_seconds_total", provider="deepgram") == 3.0
    assert grew(before, after, "ringline_tts_characters_total", provider="cartesia") == 60
    for stage, provider in (("stt", "deepgram"), ("llm", "claude-haiku-4-5"), ("tts", "cartesia")):
        assert grew(before, after, "ringline_cost_total", stage=stage, provider=provider, currency="USD") > 0
    assert grew(before, after, "ringline_turns_total", stage="telephony", kind="answer") == 1


def test_no_label_carries_a_call_id_or_a_phone_number() -> None:
    reporter = MetricsReporter("telephony")
    for _, event in one_answer():
        reporter.observe(event)
    body, _ = exposition()
    assert b"CA0001" not in body and b"+1" not in body


def test_a_replica_reports_its_calls_and_load() -> None:
    gauge = LoadGauge(max_calls=4, max_loop_lag_s=0.25)
    active = [3]
    watch_load("tts", gauge, lambda: active[0])
    samples = scrape()
    assert samples[("ringline_active_calls", (("stage", "tts"),))] == 3
    assert samples[("ringline_load_ratio", (("stage", "tts"),))] == pytest.approx(0.75)
    active[0] = 4
    assert scrape()[("ringline_load_ratio", (("stage", "tts"),))] == pytest.approx(1.0)


def test_claims_refusals_and_takeovers_count_once_per_stage() -> None:
    stt, brain = MetricsReporter("stt"), MetricsReporter("brain")
    before = scrape()
    for reporter in (stt, brain):
        for data in ({"stage": "stt", "replica": "stt-a"}, {"stage": "stt", "replica": "stt-a"},
                     {"stage": "brain", "replica": "brain-b"}):  # said twice: a late stage asked again
            reporter.observe(CallEvent(call_id="CA0002", name=events.STAGE_READY, data=data))
        reporter.observe(CallEvent(call_id="CA0003", name=events.CALL_REFUSED,
                                   data={"stage": "stt", "replica": "stt-a", "reason": "at max_calls 20"}))
        reporter.observe(CallEvent(call_id="CA0003", name=events.CALL_REFUSED,
                                   data={"stage": "stt", "replica": "stt-b", "reason": "loop lag 0.31 s"}))
        reporter.observe(CallEvent(call_id="CA0004", name=events.STAGE_TAKEOVER,
                                   data={"stage": "brain", "replica": "brain-b", "previous": "brain-a"}))
    after = scrape()
    assert grew(before, after, "ringline_calls_claimed_total", stage="stt") == 1
    assert grew(before, after, "ringline_calls_claimed_total", stage="brain") == 1
    assert grew(before, after, "ringline_calls_refused_total", stage="stt", reason="max_calls") == 1
    assert grew(before, after, "ringline_calls_refused_total", stage="stt", reason="loop_lag") == 1
    assert grew(before, after, "ringline_calls_taken_over_total", stage="brain") == 1
    assert grew(before, after, "ringline_calls_taken_over_total", stage="stt") == 0
