"""Provider contract fixtures: audio, the vendor doubles, and one harness per implementation.

A harness drives an implementation the way its stage does and reports what a caller would
notice, so one test body runs over every implementation: cloud ones against their doubles
(the vendor SDKs are the clients), local ones with their real models.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from ringline.contracts.audio import mulaw_decode
from ringline.services.stt.deepgram import DeepgramOptions, DeepgramRecognizer

from doubles.audio import frames
from doubles.deepgram import DeepgramDouble, DeepgramFaults


def run_in_fresh_loop(coro: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass
class Turn:
    text: str
    end_of_turn: bool
    latency_s: float
    """Last audio of the utterance sent -> this result received."""


# -- STT implementations -------------------------------------------------------------------

class DeepgramUnderTest:
    """DeepgramStream against the double; audio goes out faster than real time (the double
    endpoints in audio time), 20 ms frames as the stage sends them."""

    name = "deepgram"
    network = True
    capabilities = DeepgramRecognizer.capabilities

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.double: DeepgramDouble | None = None

    async def run(self, pcm: np.ndarray, texts: list[str], faults: DeepgramFaults | None = None) -> list[Turn]:
        async with DeepgramDouble(script=texts, faults=faults) as double:
            self.double = double
            recognizer = DeepgramRecognizer(DeepgramOptions(api_key="dg-test", base_url=double.ws_url, **self.options))
            stream = await recognizer.open()
            turns: list[Turn] = []
            last_voiced = {"at": 0.0}

            async def collect() -> None:
                async for event in stream.events():
                    if event.kind == "final" and event.end_of_turn:
                        turns.append(Turn(event.text, True, time.monotonic() - last_voiced["at"]))

            collector = asyncio.create_task(collect())
            for frame in frames(pcm):
                if np.abs(mulaw_decode(frame).astype(np.int32)).max() > 500:
                    last_voiced["at"] = time.monotonic()
                await stream.send(frame)
                await asyncio.sleep(0.0005)
            await asyncio.sleep(0.3)  # the last results are on their way
            await stream.aclose()
            await asyncio.wait_for(collector, 5)
            return turns


class WhisperUnderTest:
    """The local path: webrtcvad endpointing, then Whisper per utterance (existing classes)."""

    name = "whisper"
    network = False

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.capabilities = recognizer.capabilities

    async def run(self, pcm: np.ndarray, texts: list[str], faults: Any = None) -> list[Turn]:
        from ringline.services.stt.vad import Endpointer

        endpointer = Endpointer()
        turns: list[Turn] = []
        t0 = time.time()
        for i, frame in enumerate(frames(pcm)):
            for event in endpointer.push(mulaw_decode(frame), t0 + i * 0.02):
                if event.kind == "stopped" and event.audio is not None:
                    started = time.monotonic()
                    result = await self.recognizer.transcribe(event.audio)
                    if result.text:
                        turns.append(Turn(result.text, True, time.monotonic() - started))
        return turns


@pytest.fixture(scope="session")
def whisper_recognizer() -> Any:
    pytest.importorskip("faster_whisper")
    from ringline.services.stt.whisper import WhisperRecognizer

    recognizer = WhisperRecognizer()
    run_in_fresh_loop(recognizer.load())
    yield recognizer
    run_in_fresh_loop(recognizer.close())


@pytest.fixture(params=["deepgram", pytest.param("whisper", marks=pytest.mark.integration)])
def stt(request: pytest.FixtureRequest) -> Any:
    if request.param == "deepgram":
        return DeepgramUnderTest(stall_timeout_s=1.0, connect_timeout_s=1.0)
    return WhisperUnderTest(request.getfixturevalue("whisper_recognizer"))


# -- TTS implementations -------------------------------------------------------------------

@pytest.fixture(scope="session")
def piper_voice() -> Any:
    pytest.importorskip("piper")
    from ringline.services.tts.piper_voice import PiperSynth

    return PiperSynth(threads=1)


@pytest.fixture(params=["cartesia", pytest.param("piper", marks=pytest.mark.integration)])
async def tts(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    """(name, synthesizer, double or None) with the synthesizer started."""
    if request.param == "cartesia":
        from ringline.services.tts.cartesia import CartesiaOptions, CartesiaSynthesizer

        from doubles.cartesia import CartesiaDouble

        async with CartesiaDouble() as double:
            synth = CartesiaSynthesizer(CartesiaOptions(api_key="ct-test", websocket_base_url=double.ws_url))
            await synth.start()
            yield "cartesia", synth, double
            await synth.aclose()
    else:
        from ringline.services.tts.piper_provider import PiperSynthesizer

        synth = PiperSynthesizer(synth=request.getfixturevalue("piper_voice"), warmup_text="")
        await synth.start()
        yield "piper", synth, None
        await synth.aclose()
