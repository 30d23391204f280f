"""The learned end-of-turn model (Smart Turn v3.2) on real speech (Piper over mu-law) with the real
Whisper model: it ends a finished question sooner than the text rules, and holds on through a
pause in an unfinished sentence."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AudioFrame, CallStart
from ringline.contracts.runtime import CallBus, create_broker
from ringline.services.stt.app import build_service
from ringline.services.stt.session import SttSession
from ringline.services.stt.settings import SttSettings
from ringline.services.stt.smart_turn import DEFAULT_MODEL, SmartTurn

from .conftest import CALL, Call

pytestmark = pytest.mark.integration

if not DEFAULT_MODEL.is_file():
    pytest.skip(f"{DEFAULT_MODEL} is missing: run scripts/install.sh", allow_module_level=True)


def words(text: str) -> set[str]:
    return {w.strip(".,?!").lower() for w in text.split()}


async def open_call(nats_url: str, **settings: object):
    """The stt stage's parts on a real nats-server (the recognizer and the model loaded as at
    start-up) and one call's session on them; a caller on its own connection. The session is made
    here, not claimed through the call router: the claim (leases, the live-call registry) is not
    what these tests are about."""
    config = SttSettings(nats_url=nats_url, **settings)
    service = build_service(config)
    client = create_broker(config, "test-caller")
    caller = Call(client)
    caller.listen()
    await service.app.start()
    await client.start()
    session = SttSession(CallStart(call_id=CALL), CallBus(service.broker, CALL), service.recognizer,
                         config.endpointer_config(), config.turn_config(), service.turn_model)
    await session.start()
    await asyncio.sleep(0.3)  # its subscriptions reach the server (core NATS drops what nobody hears)
    caller.sessions[CALL] = session
    return service, client, caller


async def say(caller: Call, audio: np.ndarray) -> None:
    """Frames stamped as if spoken just now; each waits until the stage has taken the one before and
    any decode or model verdict in flight is back, so the silence a turn waited is exact however
    busy the machine is (as `Call.say` does on the in-memory broker)."""
    session = caller.sessions[CALL]
    payload = mulaw_encode(audio)
    start = time.time() - len(audio) / 8000
    for offset in range(0, len(payload), 160):
        frame = AudioFrame(call_id=CALL, seq=caller.seq, payload=payload[offset:offset + 160],
                           captured_at=start + offset / 8000)
        await caller.broker.publish(frame, subjects.audio_in(CALL))
        deadline = time.monotonic() + 10
        while session._last_seq < caller.seq or session.deciding:
            assert time.monotonic() < deadline, f"frame {caller.seq} not taken (deciding: {session.deciding})"
            await asyncio.sleep(0.002)
        caller.seq += 1


@pytest.fixture
async def model_call(nats_server):
    service, client, caller = await open_call(nats_server.url, turn_model=True)
    assert service.turn_model is not None and service.turn_model.loaded
    yield caller
    await caller.sessions[CALL].close("test over")
    await client.stop()
    await service.app.stop()


def test_the_model_hears_a_finished_question_and_a_sentence_that_trails_off(speak):
    model = SmartTurn()
    assert model.load()
    trailing = np.zeros(1280, dtype=np.int16)  # the 160 ms of silence it is asked after
    done = model.judge(np.concatenate([speak("What time does the pharmacy close on Saturday?"), trailing]))
    unfinished = model.judge(np.concatenate([speak("So I was wondering if"), trailing]))
    assert done.probability > 0.8 > 0.2 > unfinished.probability


async def test_a_finished_question_ends_after_a_short_silence(model_call, speak, silence):
    audio = np.concatenate([silence(400, noise=20), speak("What time does the pharmacy close on Saturday?"),
                            silence(1200, noise=20)])
    await say(model_call, audio)
    await model_call.wait_for(1)

    [final] = model_call.finals
    assert {"pharmacy", "saturday"} <= words(final.text) and final.end_reason == "model"
    [event] = [e for e in model_call.events if e.name == "stt.utterance"]
    assert 200 <= event.data["silence_waited_ms"] < 350  # sooner than the text rules' 350 ms
    assert event.data["turn_model"] == "complete" and event.data["turn_probability"] > 0.5


async def test_a_pause_inside_an_unfinished_sentence_does_not_end_the_turn(model_call, speak, silence):
    first, second = speak("I'd like to book a table for, um"), speak("Tuesday evening.")
    audio = np.concatenate([silence(400, noise=20), first, silence(1000), second, silence(2000, noise=20)])
    await say(model_call, audio)
    await model_call.wait_for(1)
    await asyncio.sleep(0.3)

    [final] = model_call.finals  # one turn: the 1 s pause after "for, um" did not end it
    assert {"table", "tuesday", "evening"} <= words(final.text)
    # Piper renders "Tuesday evening." on its own, as a fragment, and the model (rightly, for that
    # voice) hears no finished turn: the backstop ends it; a person's one sentence ends on "model".
    assert final.end_reason in ("model", "backstop")
    assert [s.kind for s in model_call.speech if s.kind != "continuing"] == ["started", "stopped"]
    [event] = [e for e in model_call.events if e.name == "stt.utterance"]
    assert event.data["turn_model"] in ("complete", "incomplete") and model_call.sessions[CALL].stats.judged >= 2


async def test_without_the_model_file_the_text_rules_end_turns(nats_server, speak, silence, caplog,
                                                                tmp_path: Path):
    caplog.set_level(logging.WARNING, "ringline.stt.smart_turn")
    service, client, caller = await open_call(nats_server.url, turn_model=True,
                                              turn_model_path=tmp_path / "missing.onnx")
    try:
        assert any("missing.onnx" in r.getMessage() and "not found" in r.getMessage() for r in caplog.records)
        audio = np.concatenate([silence(400, noise=20), speak("What time does the pharmacy close on Saturday?"),
                                silence(1200, noise=20)])
        await say(caller, audio)
        await caller.wait_for(1)
    finally:
        await caller.sessions[CALL].close("test over")
        await client.stop()
        await service.app.stop()
    assert caller.finals[0].end_reason == "complete"
