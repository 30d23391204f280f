"""Cartesia on the real stack, failing mid-call: the caller still hears the answer in time.

The five services and nats-server run as processes with `CARTESIA_API_KEY` set and the TTS
stage's Cartesia WebSocket pointed at the Cartesia double, served from a thread of this test
process (~100 ms injected on every message it sends). The double speaks the greeting; once the
caller starts talking (the STT's `speech` events on the bus) it fails every new context, so the
answer falls back to Piper within the same turn. Judged as the caller hears it and as the call
record tells it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ringline.caller import CallResult, place_call
from ringline.caller.report import format_result
from ringline.caller.speech import load_synth, say
from ringline.stack import Stack

QUESTION = "What is the capital of France?"
FAILURES = {
    "500": {"context_error_status": 500, "context_error_count": 10**6},  # an error answer: at once
    "stall": {"stall_after": 0},  # silence: Cartesia's first-audio timeout (600 ms)
}


def _doubles() -> Any:
    if "doubles" not in sys.modules:
        folder = Path(__file__).resolve().parents[1] / "doubles"
        spec = importlib.util.spec_from_file_location("doubles", folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        sys.modules["doubles"] = module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return sys.modules["doubles"]


class ThreadedDouble:
    """The Cartesia double on an event loop of its own thread; faults are changed on that loop."""

    def __init__(self) -> None:
        doubles = _doubles()
        self.double = doubles.CartesiaDouble(faults=doubles.CartesiaFaults(latency_ms=100))
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="cartesia-double", daemon=True)
        self._ready = threading.Event()

    def __enter__(self) -> ThreadedDouble:
        self._thread.start()
        assert self._ready.wait(10), "the Cartesia double did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.double.__aenter__())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.double.__aexit__(None, None, None))
        self.loop.close()

    def set_faults(self, **faults: Any) -> None:
        def apply() -> None:
            for name, value in faults.items():
                setattr(self.double.faults, name, value)

        self.loop.call_soon_threadsafe(apply)

    def mend(self) -> None:
        self.set_faults(context_error_status=None, stall_after=None, disconnect_after=None)


@pytest.fixture(scope="module")
def cartesia() -> Iterator[ThreadedDouble]:
    with ThreadedDouble() as double:
        yield double


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, cartesia: ThreadedDouble) -> Iterator[Stack]:
    env = {"CARTESIA_API_KEY": "test", "RINGLINE_TTS_CARTESIA_WEBSOCKET_URL": cartesia.double.ws_url}
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline-cloud"), quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def voice() -> Any:
    return load_synth(threads=1)


@pytest.fixture(scope="module", params=list(FAILURES))
def call(request: pytest.FixtureRequest, stack: Stack, cartesia: ThreadedDouble, voice: Any) -> CallResult:
    """One call whose answer Cartesia fails on in the way named by the parameter."""
    import nats

    question = say(voice, QUESTION)
    cartesia.mend()

    async def run() -> CallResult:
        bus = await nats.connect(stack.url)

        async def caller_speaks(msg: Any) -> None:  # the greeting is over: Cartesia breaks now
            cartesia.set_faults(**FAILURES[request.param])

        await bus.subscribe("call.*.speech", cb=caller_speaks)
        try:
            return await place_call(stack.edge_url, [question], nats_url=stack.url, record_timeout=10)
        finally:
            await bus.close()

    result = asyncio.run(run())
    cartesia.mend()
    print(format_result(result))  # shown when a test fails
    return result


def test_the_caller_hears_the_greeting_and_the_answer_within_two_seconds(call: CallResult) -> None:
    assert call.ok, call.problems
    greeting, question, answer = call.turns
    assert (greeting.speaker, question.speaker, answer.speaker) == ("agent", "caller", "agent")
    assert greeting.audio_s > 1.0 and answer.audio_s > 0.5
    assert answer.mouth_to_ear_ms is not None and 0 < answer.mouth_to_ear_ms < 2000, answer.mouth_to_ear_ms


def test_the_record_says_cartesia_greeted_and_piper_answered_after_a_fallback(
        call: CallResult, cartesia: ThreadedDouble) -> None:
    record = call.record
    assert record is not None, call.record_error
    greeting, answer = [t for t in record.turns if t.speaker == "agent"]
    assert greeting.providers["tts"] == "cartesia" and answer.providers["tts"] == "piper"

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
    characters = said["usage"]["tts_characters"]
    assert said["usage"]["tts_provider"] == "cartesia" and abs(characters - len(greeting.text)) <= 3
    assert {"tts_provider": "cartesia", "tts_characters": characters} in greeting.usage
    assert greeting.cost["tts"] > 0 and answer.cost.get("tts", 0) == 0
    assert any(u.get("tts_provider") == "piper" for u in answer.usage)
    print(f"greeting: tts first audio {said['first_audio_ms']} ms (cartesia, +100 ms injected); "
          f"answer: tts first audio {answered['first_audio_ms']} ms after a {fallback['reason']} fallback; "
          f"answer stages {answer.latency_ms}")
