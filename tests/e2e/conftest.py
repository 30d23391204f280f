"""The whole Ringline as processes: a real nats-server and the five services on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ringline.stack import Stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("ringline")
    stack = Stack.on_free_ports(data_dir=data, quiet=True)
    stack.start(timeout=300)
    yield stack
    stack.stop()


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
