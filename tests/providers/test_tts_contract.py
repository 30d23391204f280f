"""Every text-to-speech implementation keeps the same promises to the tts stage: 8 kHz mu-law
of a plausible length, a prompt stop when the reader closes the stream, clear errors."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from ringline.contracts.audio import mulaw_decode, rms_dbfs
from ringline.services.tts.cartesia import (
    CartesiaDisconnected,
    CartesiaOptions,
    CartesiaRateLimited,
    CartesiaStalled,
    CartesiaSynthesizer,
    CartesiaUnavailable,
)
from ringline.services.tts.provider import SynthesisError

from doubles.cartesia import CartesiaDouble, CartesiaFaults

pytestmark = pytest.mark.service

LINE = "Hi, thanks for calling. How can I help you today?"
LONG = " ".join([LINE] * 6)


async def synthesize(synth, text: str) -> tuple[bytes, float]:
    started = time.monotonic()
    first = 0.0
    audio = bytearray()
    async for piece in synth.stream(text):
        first = first or time.monotonic() - started
        audio += piece
    return bytes(audio), first


async def test_text_becomes_phone_audio_of_plausible_length(tts):
    _name, synth, double = tts
    audio, _first_s = await synthesize(synth, LINE)
    seconds = len(audio) / 8000  # mu-law: one byte per sample at 8 kHz
    assert 0.035 * len(LINE) < seconds < 0.12 * len(LINE)  # 100-340 words a minute
    assert rms_dbfs(mulaw_decode(audio)) > -35  # speech, not silence
    assert synth.capabilities.streaming and synth.capabilities.cancel
    if double is not None:  # the vendor was asked for exactly the phone's format
        request = double.connections[0].requests[0]
        assert request["output_format"] == {"container": "raw", "encoding": "pcm_mulaw", "sample_rate": 8000}


async def test_pieces_are_bus_sized(tts):
    _, synth, _ = tts
    pieces = [p async for p in synth.stream(LINE)]
    assert pieces and max(len(p) for p in pieces) <= synth.piece_bytes


async def test_closing_the_stream_stops_promptly_and_the_next_text_is_unaffected(tts):
    _name, synth, double = tts
    stream = synth.stream(LONG)
    async with contextlib.aclosing(stream):
        async for _ in stream:
            break
    closed_at = time.monotonic()
    await asyncio.sleep(0.3)
    if double is not None:  # the server was told to stop and generated nothing more
        record = double.connections[0]
        assert record.cancelled and record.chunks_after_cancel == 0
        sent = sum(1 for m in record.sent if isinstance(m, dict) and m.get("type") == "chunk")
        assert sent < 10  # of ~190 chunks for the long text
    audio, _first_s = await synthesize(synth, "Sure.")
    assert 0 < len(audio) / 8000 < 1.5
    assert time.monotonic() - closed_at < 3.0


# -- failures (network implementations) ------------------------------------------------

@pytest.mark.parametrize(("faults", "error", "bound_s"), [
    (CartesiaFaults(reject_status=429), CartesiaRateLimited, 1.0),
    (CartesiaFaults(reject_status=500), CartesiaUnavailable, 1.0),
    (CartesiaFaults(context_error_status=429), CartesiaRateLimited, 1.0),
    (CartesiaFaults(context_error_status=500), CartesiaUnavailable, 1.0),
    (CartesiaFaults(stall_after=0), CartesiaStalled, 1.5),
    (CartesiaFaults(stall_after=3), CartesiaStalled, 1.5),
    (CartesiaFaults(disconnect_after=3), CartesiaDisconnected, 1.0),
], ids=["429-connect", "500-connect", "429-context", "500-context", "silent", "stall", "disconnect"])
async def test_failures_raise_synthesis_errors_in_bounded_time(faults, error, bound_s):
    async with CartesiaDouble(faults=faults) as double:
        synth = CartesiaSynthesizer(CartesiaOptions(api_key="k", websocket_base_url=double.ws_url,
                                                    first_audio_timeout_s=1.0, stall_timeout_s=0.5))
        await synth.start()
        started = time.monotonic()
        with pytest.raises(SynthesisError) as raised:
            await synthesize(synth, LINE)
        assert isinstance(raised.value.cause, error), raised.value.cause
        assert time.monotonic() - started < bound_s
        await synth.aclose()


async def test_recovers_on_the_next_turn_after_a_transient_failure():
    async with CartesiaDouble(faults=CartesiaFaults(reject_status=503, reject_count=1)) as double:
        synth = CartesiaSynthesizer(CartesiaOptions(api_key="k", websocket_base_url=double.ws_url))
        await synth.start()  # fails, logged: the service still starts
        audio, _ = await synthesize(synth, LINE)  # reconnects
        assert len(audio) > 8000
        await synth.aclose()


async def test_a_server_that_never_answers_the_upgrade_times_out():
    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    synth = CartesiaSynthesizer(CartesiaOptions(api_key="k", websocket_base_url=f"ws://127.0.0.1:{port}",
                                                connect_timeout_s=0.5))
    started = time.monotonic()
    with pytest.raises(SynthesisError) as raised:
        await synthesize(synth, LINE)
    assert isinstance(raised.value.cause, CartesiaUnavailable)
    assert time.monotonic() - started < 1.5
    await synth.aclose()
    server.close()
