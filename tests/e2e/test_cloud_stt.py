"""Deepgram on the real stack, failing mid-call: the call goes on with local Whisper and the caller
still hears each answer within 2 s of finishing speaking.

nats-server and the five services run as processes with the STT stage on Deepgram, pointed at the
Deepgram double (served from a thread of this process), and the brain on Claude (the Anthropic
double, 350 ms to the first token), so that the local LLM does not compete with Whisper for the
two cores; the voice is the local Piper. The caller asks two questions. Deepgram hears the first,
then fails as the caller starts the second: the connection drops (no close frame) or Deepgram
closes it with 1011. The STT stage replays what it kept of the utterance in progress through
webrtcvad + Whisper and stays local for the rest of the call. In the 429 case Deepgram refuses the
call's connection outright: every frame goes to Whisper from the start, and none is kept for
Deepgram to be sent later. Judged as the caller hears it and as the call record tells it.
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

from doubles import AnthropicDouble, AnthropicFaults, DeepgramDouble, DeepgramFaults, InThread
from doubles.common import MOUTH_TO_EAR_LIMIT_MS

pytestmark = pytest.mark.e2e

QUESTIONS = ("What is the capital of France?", "And what is the capital of Spain?")
DEEPGRAM = "deepgram-nova-3"
WHISPER = "whisper-tiny.en"
FAILURES = {
    "drop": {"fail_at_utterance": 2},  # the TCP connection goes as the second question starts
    "1011": {"fail_at_utterance": 2, "fail_close_code": 1011},  # Deepgram closes with a server error
    "429": {"reject_status": 429},  # the call's connection is refused: Whisper from the first word
}
MENDED = {"fail_at_utterance": None, "fail_close_code": None, "reject_status": None}


@pytest.fixture(scope="module")
def deepgram() -> Iterator[InThread[DeepgramDouble]]:
    with InThread(DeepgramDouble(faults=DeepgramFaults(latency_ms=50))) as double:
        yield double


@pytest.fixture(scope="module")
def claude() -> Iterator[InThread[AnthropicDouble]]:
    faults = AnthropicFaults(first_token_ms=350, token_ms=15)
    with InThread(AnthropicDouble(faults=faults, default_reply="Sure. Let me answer that for you.")) as double:
        yield double


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, deepgram: InThread[DeepgramDouble],
          claude: InThread[AnthropicDouble]) -> Iterator[Stack]:
    env = {"RINGLINE_STT_PROVIDER": "deepgram", "DEEPGRAM_API_KEY": "test",
           "RINGLINE_STT_DEEPGRAM_BASE_URL": deepgram.double.ws_url,
           "ANTHROPIC_API_KEY": "test", "RINGLINE_BRAIN_ANTHROPIC_BASE_URL": claude.double.url}
    stack = Stack.on_free_ports(data_dir=tmp_path_factory.mktemp("ringline-cloud-stt"), quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def questions() -> list[Any]:
    voice = load_synth(threads=1)
    return [say(voice, text) for text in QUESTIONS]


class Outcome:
    def __init__(self, failure: str, result: CallResult, connects: int, connections: list[Any]) -> None:
        self.failure = failure
        self.result = result
        self.connects = connects  # connection attempts Deepgram saw during the call
        self.connections = connections  # ... and the ones it accepted (ListenRecord)


@pytest.fixture(scope="module", params=list(FAILURES))
def outcome(request: pytest.FixtureRequest, stack: Stack, deepgram: InThread[DeepgramDouble],
            questions: list[Any]) -> Outcome:
    double = deepgram.double

    def prepare() -> tuple[int, int]:
        double.script.clear()
        double.script.extend(QUESTIONS)
        return double.connects, len(double.connections)

    connects, accepted = deepgram.call(prepare)
    deepgram.set_faults(**{**MENDED, **FAILURES[request.param]})
    try:
        result = asyncio.run(place_call(stack.edge_url, questions, nats_url=stack.url, record_timeout=10))
    finally:
        deepgram.set_faults(**MENDED)
    print(format_result(result))  # shown when a test fails
    return Outcome(request.param, result, double.connects - connects, double.connections[accepted:])


def test_the_caller_hears_both_answers_without_a_long_wait(outcome: Outcome) -> None:
    result = outcome.result
    assert result.ok, result.problems
    speakers = [t.speaker for t in result.turns]
    assert speakers == ["agent", "caller", "agent", "caller", "agent"]
    for answer in result.replies:
        print(f"{outcome.failure}: mouth-to-ear {answer.mouth_to_ear_ms} ms, stages {answer.stages_ms}")
        assert answer.mouth_to_ear_ms is not None and 0 < answer.mouth_to_ear_ms < MOUTH_TO_EAR_LIMIT_MS, answer
        assert answer.audio_s > 0.5 and answer.text


def test_the_record_says_who_heard_each_question_and_why_it_changed(outcome: Outcome) -> None:
    record = outcome.result.record
    assert record is not None, outcome.result.record_error
    first, second = [t for t in record.turns if t.speaker == "caller"]
    expected = (WHISPER, WHISPER) if outcome.failure == "429" else (DEEPGRAM, WHISPER)
    assert (first.providers.get("stt"), second.providers.get("stt")) == expected
    assert "capital" in second.text.lower()  # the question in progress at the failure was not lost
    stt_usage = [u for u in first.usage if u.get("stt_provider")]
    if outcome.failure == "429":
        assert all(u["stt_provider"] == WHISPER for u in stt_usage) and not first.cost.get("stt")
    else:
        assert first.text == QUESTIONS[0]  # Deepgram's words (the double's script)
        assert stt_usage and stt_usage[0]["stt_provider"] == DEEPGRAM and first.cost.get("stt", 0) > 0

    # The agent's turns name the STT provider of the question they answer.
    answers = [t for t in record.turns if t.speaker == "agent" and t.in_reply_to]
    assert [a.providers.get("stt") for a in answers] == list(expected)

    (fallback,) = [e for e in record.events if e.get("name") == "stt.fallback"]
    assert (fallback["from"], fallback["to"]) == ("deepgram", "whisper")
    if outcome.failure == "429":
        assert fallback["status"] == 429 and fallback["error"] == "DeepgramRateLimited"
        assert fallback["replayed_frames"] == 0  # nothing was held back for Deepgram
    else:
        assert fallback["error"] == "DeepgramDisconnected"
        assert fallback["replayed_frames"] > 0  # the start of the second question, heard again locally
        if outcome.failure == "1011":
            assert "1011" in fallback["reason"]


def test_deepgram_gets_no_audio_after_it_failed(outcome: Outcome) -> None:
    """Frames are dropped for Deepgram, never queued: no reconnect within the call, and a refused
    connection never receives the call's audio later."""
    assert outcome.connects == 1
    if outcome.failure == "429":
        assert outcome.connections == []
        return
    (connection,) = outcome.connections
    heard_s = connection.audio_bytes / 8000
    second = outcome.result.turns[3]
    # Deepgram had the call up to the start of the second question, not the rest of it.
    assert heard_s < (second.started_at - outcome.result.started_at) + 1.0
