"""A real call through all five services on the offline models, checked as a caller hears it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from ringline.caller import place_call, read_wav
from ringline.stack import Stack

pytestmark = pytest.mark.e2e

GARBAGE = [
    "{not json",
    json.dumps({"event": "surprise", "streamSid": "MZ0"}),
    json.dumps({"event": "media", "media": {"payload": "%%%not-base64%%%"}}),
    json.dumps({"event": "media", "sequenceNumber": "x", "media": {}}),
    "[]",
]


def _agent_audio(wav_path: Path, start_s: float, end_s: float) -> np.ndarray:
    with wave.open(str(wav_path)) as w:
        rate = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return pcm[int(start_s * rate): int(end_s * rate)]


async def _transcribe(pcm: np.ndarray) -> str:
    from ringline.services.stt.whisper import WhisperOptions, WhisperRecognizer

    recognizer = WhisperRecognizer(WhisperOptions())
    await recognizer.load()
    try:
        return (await recognizer.transcribe(pcm)).text
    finally:
        await recognizer.close()


@pytest.fixture(scope="module")
def call(stack: Stack, question_wav: Path, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("call") / "agent.wav"
    result = asyncio.run(place_call(stack.edge_url, [read_wav(question_wav)], out=out, nats_url=stack.url,
                                    garbage_after_greeting=GARBAGE, record_timeout=10))
    return result


def test_greeting_and_answer_come_back_as_speech_on_topic(call) -> None:
    assert call.ok, call.problems
    greeting, question, answer = call.turns
    assert (greeting.speaker, question.speaker, answer.speaker) == ("agent", "caller", "agent")
    assert answer.mouth_to_ear_ms is not None and answer.mouth_to_ear_ms > 0

    heard_greeting = asyncio.run(_transcribe(_agent_audio(
        call.agent_wav, greeting.started_at - call.started_at, greeting.ended_at - call.started_at)))
    heard_answer = asyncio.run(_transcribe(_agent_audio(
        call.agent_wav, answer.started_at - call.started_at, answer.ended_at - call.started_at)))
    assert "ai" in heard_greeting.lower().replace(".", "").split() or "assistant" in heard_greeting.lower(), \
        heard_greeting
    # On topic: Whisper tiny, hearing Piper through 8 kHz mu-law, sometimes spells "Paris"
    # "Perris"; the question's own words or the answer count, and the text must be the reply's.
    words = set(heard_answer.lower().replace(".", " ").replace(",", " ").split())
    assert words & {"paris", "capital", "france"}, heard_answer
    said = set(call.record.turns[2].text.lower().replace(".", " ").replace(",", " ").split())
    assert len(words & said) >= len(said) / 2, (heard_answer, said)


def test_call_record_holds_every_turn_with_latencies(call) -> None:
    record = call.record
    assert record is not None, call.record_error
    assert record.ended_at > record.started_at and record.end_reason
    speakers = [t.speaker for t in record.turns]
    assert speakers == ["agent", "caller", "agent"], record.turns
    question, answer = record.turns[1], record.turns[2]
    assert "capital" in question.text.lower() and "france" in question.text.lower()
    assert "paris" in answer.text.lower()
    for stage in ("stt", "brain", "tts", "edge", "total"):
        assert answer.latency_ms.get(stage, 0) > 0, answer.latency_ms
    assert answer.providers["stt"] == "whisper-tiny.en" and answer.providers["tts"] == "piper"
    assert answer.providers["llm"]


def test_calls_cli_lists_and_shows_the_call(call, stack: Stack) -> None:
    env = {**os.environ, "NATS_URL": stack.url}
    listing = subprocess.run([sys.executable, "-m", "ringline.cli", "calls"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    assert call.call_sid in listing.stdout
    shown = subprocess.run([sys.executable, "-m", "ringline.cli", "calls", "show", call.call_sid], env=env,
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "capital city of france" in shown.stdout.lower() and "mouth-to-ear" in shown.stdout


def test_every_service_reports_the_call_on_metrics(call, stack: Stack) -> None:
    """What an operator's Prometheus scrapes after this call: each service's /metrics, with the
    call's answer in its stage's families and no call id or phone number in any label."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    def scrape(service: str) -> tuple[str, dict[tuple[str, tuple], float]]:
        text = httpx.get(f"http://127.0.0.1:{stack.port_of(service)}/metrics", timeout=5).text
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(text) for s in family.samples}
        return text, samples

    def value(samples: dict, name: str, **labels: str) -> float:
        return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))

    answers = len([t for t in call.turns if t.speaker == "agent"]) - 1  # the greeting answers nobody
    for service in ("telephony", "stt", "brain", "tts", "memory"):
        text, samples = scrape(service)
        assert call.call_sid not in text and "+1555" not in text
        assert ("ringline_active_calls", (("stage", service),)) in samples  # the call is over: 0, but reported
        assert "ringline_event_loop_lag_seconds" in {n for n, _ in samples}
        assert "ringline_nats_reconnects_total" in {n for n, _ in samples}
        if service != "telephony":
            assert value(samples, "ringline_calls_claimed_total", stage=service) >= 1
    _, edge = scrape("telephony")
    assert value(edge, "ringline_mouth_to_ear_seconds_count") >= answers >= 1
    _, stt = scrape("stt")
    assert value(stt, "ringline_stt_final_seconds_count") >= 1
    _, brain = scrape("brain")
    assert value(brain, "ringline_llm_first_token_seconds_count") >= answers
    assert value(brain, "ringline_reply_first_chunk_seconds_count") >= answers
    _, tts = scrape("tts")
    assert value(tts, "ringline_tts_first_audio_seconds_count") >= answers + 1  # and the greeting
