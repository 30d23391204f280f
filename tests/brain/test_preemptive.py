"""Preemptive generation: the LLM starts on the interim transcript, but nothing is spoken on a
guess; a final that says something else throws the guess away."""

from __future__ import annotations

import asyncio
import time

import pytest

pytestmark = pytest.mark.service

PARIS = ["The capital", " of France", " is Paris.", " It is lovely."]


async def test_a_confirmed_guess_is_spoken_after_the_final_and_only_then(make_harness, scripted, until):
    async with make_harness(scripted(PARIS), preemptive_generation=True) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the capital of France", utterance_id="u1", is_final=False, end_of_turn=False)
        await until(lambda: h.model.finished == 1)  # the whole reply is ready ...
        await asyncio.sleep(0.1)
        assert h.answers() == [], "... but nothing is said on a guess"

        final = await h.say(call_id, "What is the capital of France?", utterance_id="u1", provider="stt")
        await until(lambda: any(c.final for c in h.answers()))
        assert h.said() == "The capital of France is Paris. It is lovely."
        assert len(h.model.calls) == 1, "the guess was kept, not generated again"
        assert h.model.calls[0][-1] == {"role": "user", "content": "What is the capital of France"}
        chunks = h.answers()
        assert all(c.in_reply_to == "u1" for c in chunks)
        timing = chunks[-1].timing
        assert timing.transcript_at == final.emitted_at and timing.llm_started_at < timing.transcript_at
        assert timing.first_chunk_at >= timing.transcript_at
        await until(lambda: h.llm_events())
        data = h.llm_events()[0].data
        assert data["preemptive"] == "kept" and data["head_start_ms"] >= 100
        assert 0 < data["preemptive_saved_ms"] <= data["head_start_ms"]


async def test_a_final_that_differs_discards_the_guess_and_starts_again(make_harness, scripted, until):
    async with make_harness(scripted(PARIS, delay=0.05), preemptive_generation=True) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the capital of", utterance_id="u1", is_final=False, end_of_turn=False)
        await until(lambda: h.model.calls)
        h.model.pieces = ["Madrid."]
        await h.say(call_id, "What is the capital of Spain?", utterance_id="u1")
        await until(lambda: any(c.final for c in h.answers()))
        assert h.said() == "Madrid.", "nothing of the guess was spoken"
        assert h.model.stopped == 1 and len(h.model.calls) == 2
        assert h.model.calls[1][-1] == {"role": "user", "content": "What is the capital of Spain?"}
        await until(lambda: h.llm_events())
        assert [e.data.get("preemptive") for e in h.llm_events()] == ["discarded"]


async def test_a_guess_whose_final_is_only_a_backchannel_says_nothing(make_harness, scripted, until):
    async with make_harness(scripted(["Your table is booked."]), preemptive_generation=True) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "Book a table for two.", utterance_id="q1")
        await until(lambda: any(c.final for c in h.answers()))
        await h.played()
        h.model.pieces, h.model.delay = PARIS, 0.05
        started = time.time() - 0.2
        await h.say(call_id, "Okay so", utterance_id="u1", is_final=False, end_of_turn=False,
                    speech_started_at=started)
        await until(lambda: len(h.model.calls) == 2)  # a guess is running ...
        await h.say(call_id, "Okay.", utterance_id="u1", speech_started_at=started)
        await asyncio.sleep(0.4)
        assert h.said() == "Your table is booked.", "... and is dropped: 'okay' after the answer is no turn"
        assert h.model.stopped == 1


async def test_without_the_setting_an_interim_starts_nothing(make_harness, scripted, until):
    async with make_harness(scripted(PARIS)) as h:
        call_id = await h.start_call()
        await h.greeted()
        await h.say(call_id, "What is the capital of France", is_final=False, end_of_turn=False)
        await asyncio.sleep(0.2)
        assert h.model.calls == []
