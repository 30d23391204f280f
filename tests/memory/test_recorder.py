"""How the call record is assembled from what flows on a call's subjects."""

from __future__ import annotations

import pytest

from ringline.contracts import events
from ringline.contracts.messages import CallEvent, CallStart, ReplyChunk, Transcript, TurnTiming
from ringline.records import format_record
from ringline.services.memory.recorder import CallRecorder

pytestmark = pytest.mark.unit


def _recorder() -> CallRecorder:
    return CallRecorder(CallStart(call_id="CA1", caller="+1555", started_at=100.0))


def test_agent_turn_text_is_assembled_in_seq_order_even_if_chunks_arrive_out_of_order() -> None:
    rec = _recorder()
    timing = TurnTiming(first_chunk_at=101.0)
    assert not rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t", seq=1, text="world.", timing=timing))
    assert rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t", seq=0, text="Hello", timing=timing, final=True)) is True
    assert rec.record.turns[0].text == "Hello world."


def test_interrupted_turn_keeps_what_the_caller_heard_and_the_reaction_time() -> None:
    rec = _recorder()
    rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t1", seq=0, text="Our opening hours are nine to five,",
                            timing=TurnTiming(first_chunk_at=101.0)))
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_BARGE_IN, turn_id="t1",
                           data={"heard_text": "Our opening hours", "reaction_ms": 262.0}))
    turn = rec.record.turn("t1")
    assert turn.interrupted and turn.heard_text == "Our opening hours"
    assert turn.latency_ms["barge_in_reaction"] == 262.0
    assert "interrupted; the caller heard: 'Our opening hours'" in format_record(rec.record)


def test_a_turn_paused_by_a_backchannel_records_the_pause_and_that_it_went_on() -> None:
    rec = _recorder()
    rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t1", seq=0, text="First you mix the flour,",
                            timing=TurnTiming(first_chunk_at=101.0)))
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_PAUSED, turn_id="t1", data={"reaction_ms": 281.0}))
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_RESUMED, turn_id="t1",
                           data={"paused_ms": 640.0, "why": "backchannel"}))
    turn = rec.record.turn("t1")
    assert not turn.interrupted and turn.resumed == 1
    assert turn.latency_ms["pause_reaction"] == 281.0 and turn.latency_ms["paused"] == 640.0
    assert "paused by the caller 1x, then went on" in format_record(rec.record)


def test_caller_turn_gets_its_end_of_turn_delay_and_readiness_chatter_is_not_recorded() -> None:
    rec = _recorder()
    rec.on_transcript(Transcript(call_id="CA1", utterance_id="u1", text="Book a table for Tuesday.",
                                 speech_started_at=102.0, speech_ended_at=104.0, emitted_at=104.5))
    rec.on_event(CallEvent(call_id="CA1", name=events.STT_UTTERANCE, turn_id="u1", data={"end_of_turn_ms": 480.0}))
    assert not rec.on_event(CallEvent(call_id="CA1", name=events.STAGE_READY, data={"stage": "tts"}))
    turn = rec.record.turn("u1")
    assert turn.latency_ms == {"stt": 500.0, "end_of_turn": 480.0}
    assert [e["name"] for e in rec.record.events] == [events.STT_UTTERANCE]


def test_interim_transcripts_are_not_turns() -> None:
    rec = _recorder()
    assert not rec.on_transcript(Transcript(call_id="CA1", utterance_id="u1", text="Book a", is_final=False))
    assert rec.record.turns == []


def test_each_turn_is_priced_and_the_call_holds_the_total() -> None:
    rec = _recorder()
    rec.on_transcript(Transcript(call_id="CA1", utterance_id="u1", text="Hello.", speech_started_at=101.0,
                                 speech_ended_at=102.0, emitted_at=102.3))
    rec.on_event(CallEvent(call_id="CA1", name=events.STT_UTTERANCE, turn_id="u1",
                           data={"usage": {"stt_provider": "deepgram-nova-3", "stt_seconds": 60.0}}))
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_LLM, turn_id="t1",
                           data={"usage": {"llm_model": "claude-haiku-4-5", "input_tokens": 1_000_000,
                                           "output_tokens": 100_000}}))
    rec.on_event(CallEvent(call_id="CA1", name=events.TTS_TURN, turn_id="t1",
                           data={"usage": {"tts_provider": "cartesia", "tts_characters": 1000}}))
    caller, agent = rec.record.turn("u1"), rec.record.turn("t1")
    assert caller.cost["stt"] == 0.0077  # a minute of Deepgram at the default price
    assert agent.cost["llm"] == 1.5  # $1/MTok in + $5/MTok out
    assert agent.cost["tts"] == 0.05
    assert rec.record.cost["total"] == round(0.0077 + 1.5 + 0.05, 6)


def test_local_providers_cost_nothing_and_bad_usage_is_ignored() -> None:
    rec = _recorder()
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_LLM, turn_id="t1",
                           data={"usage": {"llm_model": "qwen2.5-0.5b-instruct-q4_k_m", "output_tokens": 20}}))
    rec.on_event(CallEvent(call_id="CA1", name=events.TURN_LLM, turn_id="t2", data={"usage": {"output_tokens": -5}}))
    assert rec.record.cost["total"] == 0.0
    assert rec.record.turn("t2") is None


def test_a_turn_spoken_by_two_providers_is_charged_for_both() -> None:
    rec = _recorder()
    usages = [{"tts_provider": "cartesia", "tts_characters": 100}, {"tts_provider": "piper", "tts_characters": 300}]
    rec.on_event(CallEvent(call_id="CA1", name=events.TTS_TURN, turn_id="t1",
                           data={"usage": usages[0], "usages": usages}))
    turn = rec.record.turn("t1")
    assert len(turn.usage) == 2 and turn.cost["tts"] == 0.005


def test_voicemail_summary_and_transfer_events_fill_their_typed_fields() -> None:
    rec = _recorder()
    rec.on_event(CallEvent(call_id="CA1", name=events.VOICEMAIL_STARTED, at=110.0, data={"reason": "busy"}))
    rec.on_event(CallEvent(call_id="CA1", name=events.VOICEMAIL_MESSAGE, at=130.0,
                           data={"text": "Call me back.", "duration_s": 12.5, "reason": "busy"}))
    rec.on_event(CallEvent(call_id="CA1", name=events.CALL_TRANSFER, at=131.0,
                           data={"target": "+15550100009", "outcome": "completed"}))
    rec.on_event(CallEvent(call_id="CA1", name=events.CALL_SUMMARY, at=140.0,
                           data={"summary": "Wants a call back.", "facts": {"callback": True}}))
    voicemail = rec.record.voicemail
    assert (voicemail.reason, voicemail.started_at, voicemail.taken_at) == ("busy", 110.0, 130.0)
    assert (voicemail.text, voicemail.duration_s) == ("Call me back.", 12.5)
    assert rec.record.transfer.target == "+15550100009" and rec.record.transfer.outcome == "completed"
    assert rec.record.summary.text == "Wants a call back." and rec.record.summary.facts == {"callback": True}
    assert rec.record.turns == []


def test_call_report_payload_says_what_happened() -> None:
    from ringline.services.memory.report_payload import outcome, report

    rec = _recorder()
    rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t1", seq=0, text="Hello.", final=True,
                            timing=TurnTiming(first_chunk_at=101.0)))
    rec.on_end("caller hung up", at=160.0)
    assert outcome(rec.record) == "completed"
    rec.on_event(CallEvent(call_id="CA1", name=events.VOICEMAIL_STARTED, data={"reason": "closed"}))
    body = report(rec.record)
    assert body["outcome"] == "voicemail" and body["voicemail"]["reason"] == "closed"
    assert body["duration_s"] == 60.0 and body["transcript"][0]["text"] == "Hello."


@pytest.mark.parametrize("llm_first", [True, False])
def test_a_turn_begun_by_a_chains_filler_names_the_model_that_answered(llm_first: bool) -> None:
    rec = _recorder()
    rec.on_reply(ReplyChunk(call_id="CA1", turn_id="t1", seq=0, text="One moment. Madrid.", final=True,
                            timing=TurnTiming(first_chunk_at=101.0)))
    first_audio = CallEvent(call_id="CA1", name=events.TURN_FIRST_AUDIO, turn_id="t1",
                            timing=TurnTiming(llm_provider="chain", tts_provider="piper", edge_sent_at=101.5))
    answered = CallEvent(call_id="CA1", name=events.TURN_LLM, turn_id="t1", data={"provider": "local"})
    for event in ([answered, first_audio] if llm_first else [first_audio, answered]):
        rec.on_event(event)
    assert rec.record.turn("t1").providers == {"llm": "local", "tts": "piper"}


def test_format_record_names_the_replicas_and_each_takeover() -> None:
    rec = _recorder()
    rec.on_event(CallEvent(call_id="CA1", name=events.STAGE_READY, data={"stage": "brain", "replica": "brain-1@vm"}))
    rec.on_event(CallEvent(call_id="CA1", name=events.STAGE_TAKEOVER,
                           data={"stage": "brain", "replica": "brain-2@vm", "previous": "brain-1@vm", "gap_s": 0.4}))
    rec.on_event(CallEvent(call_id="CA1", name=events.STAGE_READY, data={"stage": "brain", "replica": "brain-2@vm"}))
    shown = format_record(rec.record)
    assert rec.record.takeovers == 1 and rec.record.replicas == {"brain": "brain-2@vm"}
    assert "served by: brain brain-2@vm" in shown
    assert "takeover: brain brain-1@vm -> brain-2@vm" in shown
