"""A live call on the whole stack (NATS users on, every service at DEBUG, every secret set to a
canary value) while a fuzzer publishes random and mutated messages on every subject the
services consume (issue 11).

No service crashes, the call goes on to its answer, every bad message is dropped with a warning
that names its subject and reason; and afterwards no secret appears in any log line or span.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from ringline.caller import place_call, read_wav
from ringline.contracts import subjects
from ringline.contracts.codec import CONTENT_TYPE, pack
from ringline.contracts.runtime.permissions import inbox_prefix
from ringline.stack import Stack, free_port

pytestmark = pytest.mark.e2e

CALL = "CA" + "f00d" * 8
FUZZ_S = 12.0  # at most; the fuzzer stops when the call ends
CANARIES = {
    "ANTHROPIC_API_KEY": "sk-ant-canary-3b9f0c1d7e2a",
    "DEEPGRAM_API_KEY": "dg-canary-5a7e1f2c9b4d",
    "CARTESIA_API_KEY": "sk_car_canary_8d2e4f6a1c3b",
    "TWILIO_AUTH_TOKEN": "twilio-canary-0f1e2d3c4b5a6978",
    "RINGLINE_TELEPHONY_API_TOKEN": "api-canary-9c8b7a6d5e4f",
    "RINGLINE_TELEPHONY_WEB_TOKEN": "web-canary-1a2b3c4d5e6f",
    "RINGLINE_TELEPHONY_STREAM_SECRET": "stream-canary-7e6d5c4b3a29",
    "RINGLINE_MEMORY_REPORT_SECRET": "report-canary-6f5e4d3c2b1a",
}
# Who may publish each consumed subject (contracts/runtime/permissions.py), so the server lets
# the garbage through to the services: the fuzzer is a compromised or buggy peer, not an outsider.
PUBLISHERS = {
    subjects.audio_in(CALL): "telephony", subjects.playback(CALL): "telephony", subjects.CALLS_START: "telephony",
    subjects.CALLS_END: "telephony", subjects.audio_out(CALL): "tts", subjects.speech(CALL): "stt",
    subjects.transcript(CALL): "stt", subjects.reply(CALL): "brain", subjects.control(CALL): "brain",
    subjects.event(CALL): "memory",
}


def mutations(rng: random.Random) -> list[tuple[bytes, dict[str, str]]]:
    """Bodies no consumer may accept: each is not msgpack, or its call_id is not a string."""
    msgpack = {"content-type": CONTENT_TYPE}
    seed = {"type": "control", "v": 1, "call_id": CALL, "action": "hangup", "reason": "fuzz"}
    bad_id = {**seed, "call_id": [rng.randint(0, 9)]}
    valid_bytes = pack(seed)
    return [
        (json.dumps(seed).encode(), {}),  # a valid message as JSON: must not be read as one
        (rng.randbytes(rng.randint(1, 200)), msgpack),
        (valid_bytes[: rng.randint(1, len(valid_bytes) - 1)], msgpack),  # truncated
        (pack(bad_id), msgpack),
        (pack([1, 2, 3]), msgpack),
        (pack({**bad_id, "junk": rng.randbytes(200_000)}), msgpack),  # big
        (pack({**bad_id, "payload": rng.randbytes(160), "seq": -1, "text": None}), msgpack),
    ]


async def fuzz(stack: Stack, done: asyncio.Event) -> int:
    assert stack.users is not None
    clients = {}
    for user in set(PUBLISHERS.values()):
        clients[user] = await nats.connect(stack.server_url, user=user, password=stack.users.passwords[user],
                                           inbox_prefix=inbox_prefix(user))
    rng = random.Random(11)
    sent = 0
    deadline = time.monotonic() + FUZZ_S
    await asyncio.sleep(1.0)  # into the greeting
    try:
        while not done.is_set() and time.monotonic() < deadline:
            subject = rng.choice(list(PUBLISHERS))
            body, headers = rng.choice(mutations(rng))
            await clients[PUBLISHERS[subject]].publish(subject, body, headers=headers)
            sent += 1
            await asyncio.sleep(0.05)
    finally:
        for client in clients.values():
            await client.close()
    return sent


@pytest.fixture(scope="module")
def otlp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    port = free_port()
    path = tmp_path_factory.mktemp("spans") / "spans.ndjson"
    out = path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "oteltap", "--port", str(port)], stdout=out,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield f"http://127.0.0.1:{port}", path
    proc.terminate()
    proc.wait(10)
    out.close()


@pytest.fixture(scope="module")
def fuzzed_call(otlp, question_wav: Path, tmp_path_factory: pytest.TempPathFactory):
    endpoint, _ = otlp
    data = tmp_path_factory.mktemp("hostile")
    env = {**CANARIES, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "RINGLINE_BRAIN_PROVIDER": "local",
           "RINGLINE_TTS_PROVIDER": "piper", "RINGLINE_STT_PROVIDER": "whisper",
           **{f"RINGLINE_{name.upper()}_LOG_LEVEL": "DEBUG" for name in ("telephony", "stt", "brain", "tts", "memory")}}
    stack = Stack.on_free_ports(data_dir=data, quiet=True, env=env)
    stack.start(timeout=300)

    async def run() -> tuple[object, int]:
        done = asyncio.Event()

        async def call() -> object:
            try:
                return await place_call(stack.edge_url, [read_wav(question_wav)], nats_url=stack.url,
                                        auth_token=CANARIES["TWILIO_AUTH_TOKEN"], call_sid=CALL, record_timeout=10)
            finally:
                done.set()

        return await asyncio.gather(call(), fuzz(stack, done))

    try:
        result, sent = asyncio.run(run())
        alive = {name: proc.poll() is None for name, proc in stack.processes.items()}
        passwords = dict(stack.users.passwords) if stack.users else {}
    finally:
        stack.stop()  # services flush their spans on shutdown
    logs = {path.stem: path.read_text(errors="replace") for path in (data / "logs").glob("*.log")}
    return result, sent, alive, logs, passwords


def test_the_call_goes_on_and_no_service_falls_over(fuzzed_call) -> None:
    result, sent, alive, logs, _ = fuzzed_call
    assert sent >= 50, f"the fuzzer sent only {sent} messages"
    assert all(alive.values()), alive
    assert result.replies, f"no answer under fuzzing: {result.problems}"
    assert result.ended_by == "caller", result.ended_by
    for name in ("stt", "brain", "tts", "memory"):
        assert "Traceback" not in logs[name], f"{name} logged a traceback:\n{logs[name][-3000:]}"


def test_every_bad_message_is_dropped_with_its_subject_and_reason(fuzzed_call) -> None:
    _, _, _, logs, _ = fuzzed_call
    for name in ("stt", "brain", "tts", "memory", "telephony"):
        dropped = [line for line in logs[name].splitlines() if ("dropped a" in line and "on call" in line)
                   or "dropped a bad message on calls." in line]
        assert dropped, f"{name} logged no dropped message"
        for line in dropped:
            assert CALL in line or "calls." in line, line
            assert len(line) < 1200, f"a drop line repeats the message: {line[:200]}..."


def test_no_secret_reaches_a_log_line_or_a_span(fuzzed_call, otlp) -> None:
    _, _, _, logs, passwords = fuzzed_call
    _, spans_file = otlp
    spans = spans_file.read_text() if spans_file.exists() else ""
    assert logs and all("DEBUG" in text for name, text in logs.items() if name != "nats"), "not at DEBUG"
    assert spans.count('"traceId"') > 0, "no spans were exported"
    secrets = {**CANARIES, **{f"NATS password of {user}": pw for user, pw in passwords.items()}}
    for what, value in secrets.items():
        for name, text in {**logs, "spans": spans}.items():
            assert value not in text, f"{what} appears in {name}"
