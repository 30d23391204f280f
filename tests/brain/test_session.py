"""The brain service on FastStream's in-memory broker, with scripted chat models."""

from __future__ import annotations

import asyncio
import time

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ringline.contracts.runtime import inject_headers

pytestmark = pytest.mark.service

GREETING = "Hi, this is Ringline, an AI assistant. How can I help you today?"
RECOVERY = "Sorry, I didn't catch that. Could you say it again?"
PARIS = ["The capital", " of France", " is Paris.", " It is known", " for the Eiffel", " Tower."]


async def test_greeting_waits_for_tts_then_goes_out(make_harness, scripted, until):
    async with make_harness(scripted(PARIS), tts_ready_timeout_s=5.0) as h:
        call_id = await h.start_call(tts_ready=False)
        await asyncio.sleep(0.2)
        assert h.replies == [], "greeting must wait for the TTS stage"

        started = time.monotonic()
        await h.tts_ready(call_id)
        await h.greeted()
        assert time.monotonic() - started < 1.0
        (greeting,) = h.replies
        assert (greeting.kind, greeting.seq, greeting.final, greeting.text) == ("greeting", 0, True, GREETING)
        assert "AI" in greeting.text
        assert greeting.turn_id.isalnum() and len(greeting.turn_id) == 32


async def test_greeting_goes_out_after_timeout_without_tts(make_harness, scripted, until):
    async with make_harness(scripted(PARIS), tts_ready_timeout_s=0.3) as h:
        await h.start_call(tts_ready=False)
        await until(lambda: h.replies, timeout=2.0)
        assert h.replies[0].kind == "greeting"


async def test_final_transcript_yields_ordered_chunks_with_timings(make_harness, scripted, until):
    async with make_harness(scripted(PARIS, delay=0.01)) as h:
        call_id = await h.start_call()
        await h.greeted()
        transcript = await h.say(call_id, "What is the capital of France?", provider="fake-stt")
        await until(lambda: any(r.final for r in h.answers()))
        await until(lambda: h.llm_events())

        chunks = h.answers()
        assert [c.text for c in chunks] == ["The capital of France is Paris.", "It is known for the Eiffel Tower."]
        assert [c.seq for c in chunks] == list(range(len(chunks)))
        assert [c.final for c in chunks] == [False] * (len(chunks) - 1) + [True]
        assert {c.turn_id for c in chunks} == {chunks[0].turn_id} != {h.replies[0].turn_id}
        assert all(c.kind == "answer" and c.in_reply_to == "u1" for c in chunks)

        timing = chunks[-1].timing
        assert timing.speech_ended_at == transcript.speech_ended_at
        assert timing.transcript_at == transcript.emitted_at
        assert (timing.speech_ended_at < timing.transcript_at <= timing.llm_started_at
                <= timing.first_token_at <= timing.first_chunk_at)
        assert timing.llm_provider == "fake" and timing.stt_provider == "fake-stt"
        assert chunks[0].timing.first_chunk_at == timing.first_chunk_at

        (event,) = h.llm_events()
        assert event.turn_id == chunks[0].turn_id
        assert event.data["provider"] == "fake" and event.data["tokens"] == len(PARIS)
        assert event.data["outcome"] == "answer"
        assert 0 < event.data["first_token_ms"] <= event.data["total_ms"]


async def test_history_carries_greeting_and_previous_turns(make_harness, scripted, until):
    async with make_harness(scripted(["Paris."])) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Capital of France?", utterance_id="u1")
        await until(lambda: len(h.llm_events()) == 1)
        await h.played()  # the caller heard the answer before asking again
        await h.say(call_id, "And of Spain?", utterance_id="u2")
        await until(lambda: len(h.llm_events()) == 2)

        second = h.model.calls[1]
        assert second[0]["role"] == "system" and "AI assistant" in second[0]["content"]
        assert [(m["role"], m["content"]) for m in second[1:]] == [
            ("assistant", GREETING),
            ("user", "Capital of France?"),
            ("assistant", "Paris."),
            ("user", "And of Spain?"),
        ]


async def test_interim_and_mid_turn_transcripts_are_not_answered(make_harness, scripted, until):
    async with make_harness(scripted(PARIS)) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the", is_final=False)
        await h.say(call_id, "What is the capital", end_of_turn=False)
        await h.say(call_id, "   ")
        await asyncio.sleep(0.2)
        assert h.answers() == [] and h.model.calls == []


async def test_llm_failure_yields_recovery_line(make_harness, scripted, until):
    async with make_harness(scripted([], fail_with=RuntimeError("model exploded"))) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Hello?")
        await until(lambda: h.answers())
        (chunk,) = h.answers()
        assert (chunk.kind, chunk.text, chunk.final, chunk.seq) == ("recovery", RECOVERY, True, 0)
        await until(lambda: h.llm_events())
        data = h.llm_events()[0].data
        assert data["outcome"] == "recovery" and "model exploded" in data["error"]


async def test_silent_llm_yields_recovery_line_within_timeout(make_harness, scripted, until):
    model = scripted(["Too late."], first_delay=30.0)
    async with make_harness(model, llm_first_token_timeout_s=0.3) as h:
        call_id = await h.start_call()
        await h.greeted()
        said = time.monotonic()
        await h.say(call_id, "Hello?")
        await until(lambda: h.answers(), timeout=2.0)
        assert time.monotonic() - said < 1.0
        assert h.answers()[0].kind == "recovery"
        assert model.stopped == 1  # the stuck generation was abandoned, not left running


async def test_unspeakable_reply_yields_recovery_line(make_harness, scripted, until):
    async with make_harness(scripted(["**", " 😀", "\n"])) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Hello?")
        await until(lambda: h.answers())
        assert [c.kind for c in h.answers()] == ["recovery"]


async def test_failure_after_speaking_closes_the_turn(make_harness, scripted, until):
    model = scripted(["Paris is the capital.", " It has"], fail_with=RuntimeError("connection reset"))
    async with make_harness(model) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Capital of France?")
        await until(lambda: any(c.final for c in h.answers()))
        chunks = h.answers()
        assert [c.kind for c in chunks] == ["answer", "answer"]
        assert chunks[0].text == "Paris is the capital." and chunks[-1].final


async def test_new_transcript_cancels_the_turn_in_flight(make_harness, scripted, until):
    slow = ["One", " two", " three", " four,", " five", " six.", " seven", " eight."] * 5
    async with make_harness(scripted(slow, delay=0.05)) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Count for me.", utterance_id="u1")
        await until(lambda: h.answers())  # the first turn is speaking
        await h.played()  # and the caller has heard its first chunk
        first_turn = h.answers()[0].turn_id

        h.model.pieces = ["Okay, stopping."]
        h.model.delay = 0.0
        await h.say(call_id, "Stop, please.", utterance_id="u2")
        await until(lambda: any(c.final and c.in_reply_to == "u2" for c in h.answers()))
        await asyncio.sleep(0.3)

        old = [c for c in h.answers() if c.turn_id == first_turn]
        new = [c for c in h.answers() if c.in_reply_to == "u2"]
        assert old and not any(c.final for c in old), "the superseded turn must not continue"
        assert [c.text for c in new] == ["Okay,", "stopping."] and new[0].turn_id != first_turn
        assert h.model.stopped == 1, "generation of the old turn was stopped"
        assert [(c.action, c.turn_id) for c in h.controls] == [("interrupt", first_turn)]
        outcomes = {e.turn_id: e.data["outcome"] for e in h.llm_events()}
        assert outcomes == {first_turn: "cancelled", new[0].turn_id: "answer"}

        history = h.model.calls[1][1:]
        assert [m["role"] for m in history] == ["assistant", "user", "assistant", "user"]
        assert history[1]["content"] == "Count for me." and history[3]["content"] == "Stop, please."
        heard = " ".join(c.text for c in old)  # each chunk's mark came back: all of it was heard
        assert history[2]["content"] == f"{heard} — [interrupted by the caller]"


async def test_caller_speaking_first_gets_the_greeting_then_an_answer(make_harness, scripted, until):
    async with make_harness(scripted(["Hello there!"]), tts_ready_timeout_s=5.0) as h:
        call_id = await h.start_call(tts_ready=False)
        await h.say(call_id, "Hello? Anyone there?")
        await until(lambda: any(r.final and r.kind == "answer" for r in h.replies), timeout=2.0)
        assert [r.kind for r in h.replies] == ["greeting", "answer"]
        assert [m["role"] for m in h.model.calls[0]] == ["system", "assistant", "user"]


async def test_hangup_stops_everything(make_harness, scripted, until):
    async with make_harness(scripted([" Word."] * 100, delay=0.05)) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Talk to me.")
        await until(lambda: h.answers())
        await h.control(call_id, "hangup")
        await asyncio.sleep(0.1)
        count = len(h.answers())
        await h.say(call_id, "Are you there?", utterance_id="u2")
        await asyncio.sleep(0.3)
        assert len(h.answers()) == count
        assert not any(c.final for c in h.answers())
        assert h.model.stopped == 1 and len(h.model.calls) == 1


async def test_interrupt_control_cancels_the_named_turn(make_harness, scripted, until):
    async with make_harness(scripted([" Word."] * 100, delay=0.05)) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Talk to me.")
        await until(lambda: h.answers())
        await h.control(call_id, "interrupt", turn_id="someone-elses-turn")
        await asyncio.sleep(0.15)
        assert h.model.stopped == 0
        await h.control(call_id, "interrupt", turn_id=h.answers()[0].turn_id)
        await until(lambda: h.model.stopped == 1)


async def test_turn_span_continues_the_transcript_trace(make_harness, scripted, until):
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async with make_harness(scripted(PARIS)) as h:
        call_id = await h.start_call()
        await h.greeted()
        with provider.get_tracer("stt-test").start_as_current_span("stt") as stt_span:
            headers = inject_headers()
        await h.say(call_id, "Capital of France?", headers=headers)
        await until(lambda: any(c.final for c in h.answers()))
        await until(lambda: any(s.name == "turn" for s in exporter.get_finished_spans()))

    spans = {s.name: s for s in exporter.get_finished_spans() if s.name in ("turn", "llm")}
    turn, llm = spans["turn"], spans["llm"]
    assert turn.context.trace_id == stt_span.get_span_context().trace_id
    assert turn.parent.span_id == stt_span.get_span_context().span_id
    assert llm.parent.span_id == turn.context.span_id
    answer_headers = [hd for hd, c in zip(h.reply_headers, h.replies, strict=True) if c.kind == "answer"]
    assert all(f"{turn.context.span_id:016x}" in hd.get("traceparent", "") for hd in answer_headers)
