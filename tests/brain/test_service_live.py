"""The brain as it runs in production: `python -m ringline.services.brain` on a real nats-server
with the real local model. Proves start-up (model load before claiming calls), /health, a
greeting, an answer and a clean SIGTERM drain."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("llama_cpp")
nats = pytest.importorskip("nats")

from ringline.contracts import codec, subjects  # noqa: E402
from ringline.contracts.messages import CallEnd, CallStart, Transcript  # noqa: E402

NATS_SERVER = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(NATS_SERVER is None, reason="nats-server binary not installed")]
HEADERS = {"content-type": codec.CONTENT_TYPE}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port: int, timeout: float = 60.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).read()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


async def test_brain_process_greets_answers_and_drains(tmp_path):
    nats_port, http_port = free_port(), free_port()
    server = subprocess.Popen([NATS_SERVER, "-a", "127.0.0.1", "-p", str(nats_port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, NATS_URL=f"nats://127.0.0.1:{nats_port}", RINGLINE_BRAIN_PORT=str(http_port),
               RINGLINE_BRAIN_TTS_READY_TIMEOUT_S="0.2", RINGLINE_BRAIN_PROVIDER="local")
    log_file = (tmp_path / "brain.log").open("wb")
    brain = subprocess.Popen([sys.executable, "-m", "ringline.services.brain"], env=env,
                             stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        health = await asyncio.to_thread(wait_healthy, http_port)
        assert b'"status":"ok"' in health

        client = await nats.connect(f"nats://127.0.0.1:{nats_port}")
        replies: list[dict] = []

        async def on_reply(msg) -> None:
            replies.append(codec.unpack(msg.data))

        await client.subscribe(subjects.reply("live-1"), cb=on_reply)
        await client.publish(subjects.CALLS_START, codec.pack(CallStart(call_id="live-1")), headers=HEADERS)
        for _ in range(100):
            if replies:
                break
            await asyncio.sleep(0.05)
        assert replies and replies[0]["kind"] == "greeting"

        question = Transcript(call_id="live-1", utterance_id="u1", text="What is the capital of France?")
        await client.publish(subjects.transcript("live-1"), codec.pack(question), headers=HEADERS)
        for _ in range(200):
            if any(r["final"] and r["kind"] == "answer" for r in replies):
                break
            await asyncio.sleep(0.05)
        answer = " ".join(r["text"] for r in replies if r["kind"] == "answer")
        assert "Paris" in answer
        await client.publish(subjects.CALLS_END, codec.pack(CallEnd(call_id="live-1")), headers=HEADERS)
        await client.flush()
        await client.close()
    finally:
        brain.send_signal(signal.SIGTERM)
        code = brain.wait(timeout=30)
        server.terminate()
        server.wait(timeout=10)
        log_file.close()
    log = (tmp_path / "brain.log").read_text()
    assert "Traceback" not in log, log
    assert code in (0, -signal.SIGTERM), log
