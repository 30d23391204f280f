"""One trace per call: every stage's spans for a call share the trace the edge started."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from ringline.caller import place_call, read_wav
from ringline.stack import Stack, free_port

pytestmark = pytest.mark.e2e


@pytest.fixture
def otlp_receiver(tmp_path: Path):
    """A real OTLP/HTTP receiver (oteltap) that writes every span it gets as one JSON line."""
    port = free_port()
    out = (tmp_path / "spans.ndjson").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "oteltap", "--port", str(port)], stdout=out,
                            stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    yield f"http://127.0.0.1:{port}", tmp_path / "spans.ndjson"
    proc.terminate()
    proc.wait(10)
    out.close()


def test_a_call_is_one_trace_with_spans_from_every_stage(otlp_receiver, question_wav: Path, tmp_path: Path) -> None:
    endpoint, spans_file = otlp_receiver
    stack = Stack.on_free_ports(data_dir=tmp_path / "stack", quiet=True,
                                env={"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    stack.start(timeout=300)
    try:
        result = asyncio.run(place_call(stack.edge_url, [read_wav(question_wav)], nats_url=stack.url))
    finally:
        stack.stop()  # services flush their spans on shutdown
    assert result.ok, result.problems

    spans = [json.loads(line) for line in spans_file.read_text().splitlines() if line.startswith("{")]
    by_trace: dict[str, set[str]] = defaultdict(set)
    for span in spans:
        by_trace[span["traceId"]].add(span["name"])
    call_traces = [names for names in by_trace.values() if "call" in names]
    assert len(call_traces) == 1, dict(by_trace)
    names = call_traces[0]
    for expected in ("call", "stt.utterance", "turn", "llm", "tts.chunk"):
        assert expected in names, sorted(names)
