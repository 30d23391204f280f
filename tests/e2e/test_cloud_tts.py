"""Cartesia on the real stack, failing mid-call: the caller still hears the answer in time.

The five services and nats-server run as processes with `CARTESIA_API_KEY` set and the TTS
stage's Cartesia WebSocket pointed at the Cartesia double, served from a thread of this test
process (~100 ms injected on every message it sends); the brain answers through Claude (the
Anthropic double, 350 ms to the first token), so that the answer's time does not hang on how busy
the two cores are with the local LLM. The double speaks the greeting (one context for the turn);
once the caller starts talking (the STT's `speech` events on the bus) it fails every request, so
the answer falls back to Piper within the same turn. Judged as the caller hears it and as the
call record tells it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from ringline.caller import CallResult, place_call
from ringline.caller.report import format_result
from ringline.caller.speech import load_synth, say
from ringline.stack import Stack

from doubles import AnthropicDouble, AnthropicFaults, CartesiaDouble, CartesiaFaults, InThread
from doubles.common import MOUTH_TO_EAR_LIMIT_MS

pytestmark = pytest.mark.e2e


QUESTION = "What is the capital of France?"
FAILURES = {
    "500": {"context_error_status": 500, "context_error_count": 10**6},  # an error answer: at once
    "stall": {"stall_after": 0},  # silence: Cartesia's first-audio timeout (600 ms)
}


@pytest.fixture(scope="module")
def cartesia() -> Iterator[InThread[CartesiaDouble]]:
    with InThread(CartesiaDouble(faults=CartesiaFaults(latency_ms=100))) as double:
        yield double


def mend(cartesia: InThread[CartesiaDouble]) -> None:
    cartesia.set_faults(context_error_status=None, stall_after=None, disconnect_after=None)


@pytest.fixture(scope="module")
def claude() -> Iterator[InThread[AnthropicDouble]]:
    faults = AnthropicFaults(first_token_ms=350, token_ms=15)
    with InThread(AnthropicDouble(faults=faults, default_reply="The capital of France is Paris.")) as double:
        yield double


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cartesia: InThread[CartesiaDouble],
          claude: InThread[AnthropicDouble]) -> Iterator[Stack]:
    env = {"CARTESIA_API_KEY": "test", "RINGLINE_TTS_CARTESIA_WEBSOCKET_URL": cartesia.double.ws_url,
           "ANTHROPIC_API_KEY": "test", "RINGLINE_BRAIN_ANTHROPIC_BASE_URL": claude.double.url}
    # Anonymous NATS: the test itself watches `call.*.speech` to break Cartesia at the right moment.
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline-cloud"), quiet=True, env=env, auth=False)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def voice() -> Any:
    return load_synth(threads=1)


@pytest.fixture(scope="module", params=list(FAILURES))
def call(request: pytest.FixtureRequest, stack: Stack, cartesia: InThread[CartesiaDouble], voice: Any) -> CallResult:
    """One call whose answer Cartesia fails on in the way named by the parameter."""
    import nats

    question = say(voice, QUESTION)
    mend(cartesia)

    async def run() -> CallResult:
        bus = await nats.connect(stack.url)

        async def caller_speaks(msg: Any) -> None:  # the greeting is over: Cartesia breaks now
            cartesia.set_faults(wait=False, **FAILURES[request.param])

        await bus.subscribe("call.*.speech", cb=caller_speaks)
        try:
            return await place_call(stack.edge_url, [question], nats_url=stack.url, record_timeout=10)
        finally:
            await bus.close()

    result = asyncio.run(run())
    mend(cartesia)
    print(format_result(result))  # shown when a test fails
    return result


def test_the_caller_hears_the_greeting_and_the_answer_without_a_long_wait(call: CallResult) -> None:
    assert call.ok, call.problems
    greeting, question, answer = call.turns
    assert (greeting.speaker, question.speaker, answer.speaker) == ("agent", "caller", "agent")
    assert greeting.audio_s > 1.0 and answer.audio_s > 0.5
    assert answer.mouth_to_ear_ms is not None and 0 < answer.mouth_to_ear_ms < MOUTH_TO_EAR_LIMIT_MS, \
        answer.mouth_to_ear_ms


def test_the_record_says_cartesia_greeted_and_piper_answered_after_a_fallback(
        call: CallResult, cartesia: InThread[CartesiaDouble]) -> None:
    record = call.record
    assert record is not None, call.record_error
    greeting, answer = [t for t in record.turns if t.speaker == "agent"]
    assert greeting.providers["tts"] == "cartesia" and answer.providers["tts"] == "piper", \
        [(t.text, t.providers) for t in record.turns]

    tts = {e["turn_id"]: e for e in record.events if e["name"] == "tts.turn"}
    said = tts[greeting.turn_id]
    assert set(said["providers"]) == {"cartesia"} and said["fallbacks"] == []
    answered = tts[answer.turn_id]
    assert set(answered["providers"]) == {"piper"}
    (fallback,) = answered["fallbacks"]  # the first chunk; the rest of the turn stayed with Piper
    assert (fallback["seq"], fallback["from"], fallback["to"]) == (0, "cartesia", "piper")
    assert fallback["reason"] in {"unavailable", "timeout", "stalled"}

    # Cost: Cartesia billed for the greeting's characters (what it was sent); Piper is free.
    sent = {r["transcript"].strip() for c in cartesia.double.connections for r in c.requests if "cancel" not in r}
    assert greeting.text.split()[0] in " ".join(sent)
    by_context: dict[str, list[str]] = {}  # over this module's calls: one greeting each
    for connection in cartesia.double.connections:
        for r in connection.requests:
            if r.get("transcript", "").strip():
                by_context.setdefault(r["context_id"], []).append(r["transcript"].strip())
    greetings = [" ".join(texts) for texts in by_context.values() if texts[0] in greeting.text]
    assert greetings and all(text == greeting.text for text in greetings)  # the whole greeting on one context
    characters = said["usage"]["tts_characters"]
    assert said["usage"]["tts_provider"] == "cartesia" and abs(characters - len(greeting.text)) <= 3
    assert {"tts_provider": "cartesia", "tts_characters": characters} in greeting.usage
    assert greeting.cost["tts"] > 0 and answer.cost.get("tts", 0) == 0
    assert any(u.get("tts_provider") == "piper" for u in answer.usage)
    print(f"greeting: tts first audio {said['first_audio_ms']} ms (cartesia, +100 ms injected); "
          f"answer: tts first audio {answered['first_audio_ms']} ms after a {fallback['reason']} fallback; "
          f"answer stages {answer.latency_ms}")
