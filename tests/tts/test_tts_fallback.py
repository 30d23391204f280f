"""The end of the fallback chain (the pre-rendered apology), barge-in on a Cartesia turn, per-call
voices, and how settings pick the chain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from pydantic import ValidationError

from ringline.contracts.messages import SAMPLE_RATE
from ringline.services.tts.cartesia import CartesiaOptions, CartesiaSynthesizer
from ringline.services.tts.fallback import FallbackSynthesizer, Link
from ringline.services.tts.provider import SynthCapabilities, Synthesizer, build_synthesizer
from ringline.services.tts.settings import TtsSettings

from doubles.cartesia import CartesiaDouble, CartesiaFaults

pytestmark = pytest.mark.integration

LONG = " ".join(["This answer goes on for quite a while, so there is time to interrupt it."] * 4)


class BrokenPiper(Synthesizer):
    """The local voice, broken: every chunk fails."""

    name = "piper"
    capabilities = SynthCapabilities(streaming=True, cancel=True)

    async def _stream_impl(self, text: str) -> AsyncIterator[bytes]:
        raise RuntimeError("voice model crashed")
        yield b""  # pragma: no cover - makes this an async generator


def chain(double: CartesiaDouble, apology_voice: Synthesizer | None) -> FallbackSynthesizer:
    cartesia = CartesiaSynthesizer(CartesiaOptions(api_key="ct-test", websocket_base_url=double.ws_url))
    return FallbackSynthesizer([Link(cartesia, 0.6), Link(BrokenPiper())],
                               apology_text="Sorry, I'm having trouble speaking right now.",
                               apology_voice=apology_voice)


async def test_when_piper_fails_too_the_caller_hears_the_apology_once_and_the_turn_still_ends(
        make_harness, piper, wait_until) -> None:
    async with CartesiaDouble(faults=CartesiaFaults(reject_status=503)) as double:
        synth = chain(double, apology_voice=piper)  # the real voice renders the apology at start
        async with make_harness(synth) as tts:
            assert synth.apology and len(synth.apology) / SAMPLE_RATE > 1.0
            call = await tts.call()
            await call.say("t1", 0, "Your table is booked for eight.")
            await call.say("t1", 1, "See you on Tuesday.", final=True)
            await wait_until(lambda: call.finished("t1") and "tts.turn" in call.event_names())

    (first, second) = call.spoken("t1")
    assert first[0] == "t1:0" and first[1] == synth.apology and first[2] == {"prerendered"}
    assert second[0] == "t1:1" and second[1] == b""  # not the apology twice; the mark still comes
    errors = [e for e in call.events if e.name == "tts.error"]
    assert [e.data["seq"] for e in errors] == [0, 1]  # neither text was heard: the record knows
    assert errors[0].data["played_instead"] == "prerendered" and errors[0].data["audio_ms"] > 1000
    assert [(f["from"], f["to"], f["reason"]) for f in errors[0].data["fallbacks"]] == [
        ("cartesia", "piper", "unavailable"), ("piper", "prerendered", "error")]
    assert "played_instead" not in errors[1].data
    report = call.event("tts.turn", "t1")
    assert report.data["providers"] == ["prerendered", ""] and "usage" not in report.data


async def test_without_an_apology_a_chunk_nobody_can_speak_is_reported_and_its_mark_still_sent(
        make_harness, wait_until) -> None:
    async with CartesiaDouble(faults=CartesiaFaults(context_error_status=500, context_error_count=10)) as double:
        async with make_harness(chain(double, apology_voice=None)) as tts:
            call = await tts.call()
            await call.say("t1", 0, "Hello there.", final=True)
            await wait_until(lambda: call.finished("t1"))
    assert call.spoken("t1") == [("t1:0", b"", set())]
    (error,) = [e for e in call.events if e.name == "tts.error"]
    assert error.data["mark"] == "t1:0" and error.data["provider"] == "piper" and error.data["audio_ms"] == 0


async def test_an_interrupt_cancels_the_cartesia_context_at_once(make_harness, piper, cloud, wait_until) -> None:
    async with CartesiaDouble(faults=CartesiaFaults(rtf=1.0)) as double:  # audio comes in real time
        async with make_harness(build_synthesizer(cloud.settings(double), local=piper)) as tts:
            call = await tts.call()
            await call.say("t1", 0, LONG, final=True)
            await wait_until(lambda: len(call.turn_audio("t1")) >= 2)
            await call.control("interrupt", "t1")
            heard = len(call.turn_audio("t1"))
            await wait_until(lambda: double.connections[0].cancelled)
            await asyncio.sleep(0.3)

            (context_id,) = cloud.asked(double)
            assert double.connections[0].cancelled == [context_id]
            assert double.connections[0].chunks_after_cancel == 0  # nothing more was generated
            assert len(call.turn_audio("t1")) == heard and not call.finished("t1")
            report = call.event("tts.turn", "t1")
            assert report.data["interrupted"] is True
            assert report.data["usage"] == {"tts_provider": "cartesia", "tts_characters": len(LONG)}


async def test_a_call_can_pick_its_own_cartesia_voice_and_model(make_harness, piper, cloud, wait_until) -> None:
    async with CartesiaDouble() as double:
        async with make_harness(build_synthesizer(cloud.settings(double), local=piper)) as tts:
            custom = await tts.call("call-1", custom={"tts_voice": "voice-9", "tts_model": "sonic-turbo"})
            plain = await tts.call("call-2")
            await custom.say("t1", 0, "Hello from another voice.", final=True)
            await plain.say("t1", 0, "Hello from the usual voice.", final=True)
            await wait_until(lambda: custom.finished("t1") and plain.finished("t1"))
    asked = {r["transcript"]: (r["voice"]["id"], r["model_id"])
             for c in double.connections for r in c.requests if r.get("transcript")}
    assert asked == {"Hello from another voice.": ("voice-9", "sonic-turbo"),
                     "Hello from the usual voice.": ("voice-1", "sonic-3")}
    assert len(double.connections) == 1  # one connection for every voice


# -- choosing the chain ------------------------------------------------------------------------

def names(synth: Synthesizer) -> list[str]:
    assert isinstance(synth, FallbackSynthesizer)
    return [link.synth.name for link in synth.links]


def test_auto_speaks_with_cartesia_when_its_key_is_set(monkeypatch: pytest.MonkeyPatch, piper) -> None:
    monkeypatch.setenv("CARTESIA_API_KEY", "ct-live")
    monkeypatch.setenv("RINGLINE_TTS_CARTESIA_WEBSOCKET_URL", "ws://127.0.0.1:9")
    settings = TtsSettings()
    assert settings.provider == "auto" and settings.cartesia_api_key is not None
    assert settings.cartesia_api_key.get_secret_value() == "ct-live" and "ct-live" not in repr(settings)
    synth = build_synthesizer(settings, local=piper)
    assert names(synth) == ["cartesia", "piper"]
    cartesia = synth.links[0]
    assert isinstance(cartesia.synth, CartesiaSynthesizer)
    assert cartesia.synth.options.websocket_base_url == "ws://127.0.0.1:9"
    assert cartesia.first_audio_timeout_s == settings.cartesia_first_audio_timeout_s == 0.6


def test_without_a_key_or_when_told_to_piper_speaks_alone(monkeypatch: pytest.MonkeyPatch, piper) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    assert names(build_synthesizer(TtsSettings(), local=piper)) == ["piper"]
    monkeypatch.setenv("CARTESIA_API_KEY", "ct-live")
    assert names(build_synthesizer(TtsSettings(provider="piper"), local=piper)) == ["piper"]
    monkeypatch.setenv("CARTESIA_API_KEY", " ")
    assert names(build_synthesizer(TtsSettings(), local=piper)) == ["piper"]


def test_cartesia_without_a_key_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CARTESIA_API_KEY", raising=False)
    with pytest.raises(ValidationError, match="CARTESIA_API_KEY"):
        TtsSettings(provider="cartesia")
