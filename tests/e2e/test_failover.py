"""Calls that never drop (issue 9), on the real stack: two replicas of every back-end stage on the
offline models, a real nats-server, one caller asking five questions. When the agent starts its
answers to questions 1-4, the replica serving the brain, then TTS, then STT, then memory is
killed with SIGKILL, one at a time. Every question is answered, the call ends normally, and one
record holds every question and names each takeover.

Short form for CI: one call, one kill per stage. `tests/bench/failover_bench.py` repeats it and
prints the failover gap per stage.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from ringline.caller import Say, Scenario, Wait, place_call, prepare
from ringline.caller.report import format_result
from ringline.chaos import chaos_call
from ringline.records import list_calls
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

QUESTIONS = [
    "What is the capital city of France?",
    "What is the capital of Italy?",
    "How many days are in a week?",
    "What color is the sky?",
    "What is the capital city of France?",
]
STAGES = ["brain", "tts", "stt", "memory"]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline"), quiet=True, auth=False,
                                replicas={stage: 2 for stage in STAGES})
    stack.start(timeout=420)
    yield stack
    stack.stop()


def test_killing_the_owner_of_each_stage_mid_answer_drops_nothing(replicated: Stack, voice) -> None:
    steps: list = []
    for question in QUESTIONS:
        steps += [Say(question), Wait(ms=1500)]
    scenario = prepare(Scenario(steps), voice)
    chaos = asyncio.run(chaos_call(replicated, scenario, STAGES, kill_after_s=0.8))
    result = chaos.result
    print(format_result(result))
    for kill in chaos.kills:
        print(f"killed {kill.stage} ({kill.replica or kill.error}): taken over after {kill.takeover_s} s,"
              f" next agent audio after {kill.gap_s} s, next answer's mouth-to-ear {kill.next_answer_ms} ms")

    assert all(kill.replica for kill in chaos.kills), [k.error for k in chaos.kills]
    assert result.ok, result.problems
    assert result.ended_by != "agent" or result.hung_up_after_goodbye  # nobody hung up on the caller mid-call
    callers = [t for t in result.turns if t.speaker == "caller"]
    assert len(callers) == len(QUESTIONS)
    # Every question got an answer the caller heard, after each kill too.
    assert len(result.replies) >= len(QUESTIONS), [t.text for t in result.turns]
    agent_lines = [t.text for t in result.turns if t.speaker == "agent"]
    assert sum("how can i help" in line.lower() for line in agent_lines) == 1, "the agent greeted the caller again"
    for kill in chaos.kills:
        assert kill.gap_s is not None, f"no agent audio after {kill.stage} was killed"
        assert kill.takeover_s is not None, f"no replica took {kill.stage} over"

    record = result.record
    assert record is not None, result.record_error
    assert record.ended_at and record.end_reason
    heard = " ".join(t.text for t in record.turns if t.speaker == "caller").lower()
    for word in ("france", "italy", "week", "sky"):
        assert word in heard, heard
    assert record.takeovers >= len(STAGES) - 1  # memory's own takeover may come after its kill was recorded
    taken = {e.get("stage") for e in record.events if e.get("name") == "stage.takeover"}
    assert {"brain", "tts", "stt"} <= taken, taken
    calls = asyncio.run(list_calls(replicated.url, limit=50))
    assert [c.call_id for c in calls].count(result.call_sid) == 1


def test_a_call_that_arrives_before_the_brain_is_up_hears_the_hold_line_then_is_answered(replicated: Stack,
                                                                                         voice) -> None:
    """As a new user would: the call comes while every brain replica is still loading its model."""
    brains = replicated.replica_keys("brain")
    for key in brains:
        replicated.kill(key)
    for key in brains:
        replicated.process(key).wait(10)

    async def call_then_start_brains():
        scenario = prepare(Scenario([Wait(ms=10000), Say("What is the capital of Italy?")]), voice)
        task = asyncio.create_task(place_call(replicated.edge_url, scenario, nats_url=replicated.url,
                                              reply_timeout=60.0, record_timeout=20.0, max_reply_s=60.0))
        await asyncio.sleep(0.5)
        for key in brains:  # the brains come up after the call began (loading takes seconds)
            replicated.spawn_again(key)
        return await task

    result = asyncio.run(call_then_start_brains())
    print(format_result(result))
    assert result.ok, result.problems
    record = result.record
    assert record is not None, result.record_error
    holds = [e for e in record.events if e.get("name") == "call.hold"]
    assert holds and holds[0]["stages"] == ["brain"] and not holds[0].get("gave_up")
    agent = [t.text.lower() for t in result.turns if t.speaker == "agent"]
    assert any("how can i help" in line for line in agent), agent  # greeted once the brain was up
    assert "rome" in " ".join(agent), agent
