"""The whole Ringline as processes: a real nats-server and the five services on free ports."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from ringline.stack import Stack


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A module with an `AGENTS` YAML string gets it as the stack's agents file."""
    data = tmp_path_factory.mktemp("ringline")
    env = {}
    agents = getattr(request.module, "AGENTS", None)
    if agents is not None:
        path = data / "agents.yaml"
        path.write_text(textwrap.dedent(agents))
        env["RINGLINE_AGENTS_FILE"] = str(path)
    stack = Stack.on_free_ports(data_dir=data, quiet=True, env=env)
    stack.start(timeout=300)
    yield stack
    stack.stop()
    # Every service logs in as its own NATS user: one that subscribes or publishes outside its
    # role (contracts/runtime/permissions.py) is refused by the server and loses that flow.
    refused = [f"{log.stem}: {line.strip()}" for log in sorted((data / "logs").glob("*.log"))
               for line in log.read_text(errors="replace").splitlines() if "permissions violation" in line.lower()]
    assert not refused, "\n".join(refused[:10])


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A recorded question: the local voice at its own rate (22.05 kHz), saved as a WAV file.
    (Whisper tiny with its 20 s window hears this rendering of "What is the capital of France?"
    as "...of friends?"; the caller's voice is deterministic, so this wording is heard right.)"""
    import numpy as np

    from ringline.caller.speech import load_synth, write_wav

    synth = load_synth()
    pcm = np.concatenate(list(synth.synthesize("What is the capital city of France?")))
    return write_wav(tmp_path_factory.mktemp("audio") / "question.wav", pcm, rate=synth.sample_rate)


@pytest.fixture(scope="session")
def voice():
    """The simulated caller's voice (Piper, without sampling noise), loaded once."""
    from ringline.caller.speech import load_synth

    return load_synth(threads=1)


@pytest.fixture(scope="session")
def agent_call(voice):
    """`agent_call(stack, steps, caller, callee)`: one scripted call from `caller` to `callee`,
    printed (shown when a test fails), with its record."""
    import asyncio

    from ringline.caller import Scenario, place_call, prepare
    from ringline.caller.report import format_result

    def _call(stack: Stack, steps: list, caller: str, callee: str):
        scenario = prepare(Scenario(steps), voice)
        result = asyncio.run(place_call(stack.edge_url, scenario, nats_url=stack.url, caller=caller,
                                        callee=callee, reply_timeout=40.0, record_timeout=15.0, max_reply_s=60.0))
        print(format_result(result))
        return result

    return _call
