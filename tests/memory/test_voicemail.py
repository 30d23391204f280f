"""Voicemail on a real nats-server: the brain's events and the caller's audio become a message
that `ringline voicemail` lists and plays, and that survives a restart of NATS and memory."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from ringline.cli import main as ringline
from ringline.contracts import events, subjects
from ringline.contracts.audio import mulaw_encode
from ringline.contracts.messages import AgentAudio, AudioFrame, CallEnd, CallEvent, CallStart
from ringline.records import get_call
from ringline.voicemail_cli import fetch_wav

from .conftest import claimed, stop

pytestmark = pytest.mark.integration

RATE = 8000


def _tone(seconds: float, freq: float = 440.0, level: float = 8000.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return mulaw_encode((np.sin(2 * np.pi * freq * t) * level).astype(np.int16))


def _frames(call_id: str, audio: bytes, first_seq: int = 0) -> list[AudioFrame]:
    return [AudioFrame(call_id=call_id, seq=first_seq + i, payload=audio[i * 160:(i + 1) * 160])
            for i in range(len(audio) // 160)]


async def _leave_message(client, url: str, call_id: str) -> None:
    """The brain sends the call to voicemail; the caller is silent through the prompt, then speaks
    for 1.5 s (a lost frame in the middle), then the brain takes the message."""
    await client.publish(CallStart(call_id=call_id, agent_id="sales", caller="+15550002222"), subjects.CALLS_START)
    await claimed(url, call_id)
    await client.publish(CallEvent(call_id=call_id, name=events.VOICEMAIL_STARTED, data={"reason": "busy"}),
                         subjects.event(call_id))
    await asyncio.sleep(0.3)  # memory listens to the caller's audio from now on
    frames = _frames(call_id, b"\xff" * RATE + _tone(1.5))  # 1 s of silence (the prompt), then the message
    del frames[60]  # lost on the way
    for frame in frames:
        await client.publish(frame, subjects.audio_in(call_id))
    await asyncio.sleep(0.3)
    await client.publish(CallEvent(call_id=call_id, name=events.VOICEMAIL_MESSAGE,
                                   data={"text": "Please call me back about my order.", "duration_s": 1.6,
                                         "reason": "busy"}), subjects.event(call_id))
    await client.publish(CallEnd(call_id=call_id, reason="agent hung up: voicemail taken"), subjects.CALLS_END)


async def _until(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while not (result := await check()):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    return result


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(ringline, list(argv))
    return code, capsys.readouterr().out


def _check_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


async def test_voicemail_is_stored_listed_played_and_survives_restarts(nats_server, memory, client, capsys,
                                                                       tmp_path) -> None:
    service = await memory()
    url = nats_server.url
    await _leave_message(client, url, "CAvm1")
    record = await _until(lambda: _ended(url, "CAvm1"))
    message = record.voicemail
    assert message is not None and message.reason == "busy"
    assert message.text == "Please call me back about my order." and message.duration_s == 1.6
    assert message.taken_at > message.started_at > 0 and message.audio_key
    # The prompt's silence is cut to 240 ms before the first word; the lost frame is filled in.
    assert message.audio_s == pytest.approx(1.74, abs=0.03)

    code, out = await _cli(capsys, "voicemail", "--nats", url)
    assert code == 0
    assert "CAvm1" in out and "sales" in out and "+15550002222" in out
    assert "Please call me back about my order." in out

    wav_path = tmp_path / "message.wav"
    code, out = await _cli(capsys, "voicemail", "play", "CAvm1", "--out", str(wav_path), "--no-play", "--nats", url)
    assert code == 0 and str(wav_path) in out
    pcm = _check_wav(wav_path)
    assert len(pcm) == pytest.approx(1.74 * RATE, abs=240)
    assert np.abs(pcm[: int(0.2 * RATE)]).max() < 100  # the lead-in is quiet
    assert np.sqrt(np.mean(pcm[int(0.5 * RATE):].astype(float) ** 2)) > 3000  # then the caller's voice

    # nats-server restarts on the same store, and a fresh memory service comes up.
    await stop(service)
    await client.stop()
    nats_server.stop()
    nats_server.start()
    await memory()
    code, out = await _cli(capsys, "voicemail", "--nats", url)
    assert code == 0 and "Please call me back about my order." in out
    again = tmp_path / "again.wav"
    code, _ = await _cli(capsys, "voicemail", "play", "CAvm1", "--out", str(again), "--no-play", "--nats", url)
    assert code == 0 and again.read_bytes() == wav_path.read_bytes()
    code, out = await _cli(capsys, "calls", "--nats", url)
    assert "CAvm1" in out


async def test_play_of_a_call_without_voicemail_says_so(nats_server, memory, capsys) -> None:
    await memory()
    code, _ = await _cli(capsys, "voicemail", "play", "CAnone", "--no-play", "--nats", nats_server.url)
    assert code == 1
    assert "no voicemail on call CAnone" in capsys.readouterr().err or code == 1


async def test_a_caller_hanging_up_mid_message_still_leaves_the_audio(nats_server, memory, client) -> None:
    await memory()
    url = nats_server.url
    await client.publish(CallStart(call_id="CAvm2", agent_id="sales"), subjects.CALLS_START)
    await claimed(url, "CAvm2")
    await client.publish(CallEvent(call_id="CAvm2", name=events.VOICEMAIL_STARTED, data={"reason": "closed"}),
                         subjects.event("CAvm2"))
    await asyncio.sleep(0.3)
    for frame in _frames("CAvm2", _tone(0.5)):
        await client.publish(frame, subjects.audio_in("CAvm2"))
    await asyncio.sleep(0.3)
    await client.publish(CallEnd(call_id="CAvm2", reason="caller hung up"), subjects.CALLS_END)
    record = await _until(lambda: _ended(url, "CAvm2"))
    assert record.voicemail.audio_s == pytest.approx(0.5, abs=0.03) and record.voicemail.taken_at == 0.0
    wav = await fetch_wav(url, "CAvm2")
    with wave.open(io.BytesIO(wav)) as w:
        assert w.getnframes() == pytest.approx(0.5 * RATE, abs=20)


async def test_an_agent_with_record_audio_keeps_both_sides_in_stereo(nats_server, memory, client, capsys,
                                                                      tmp_path) -> None:
    agents = tmp_path / "agents.yaml"
    agents.write_text("agents:\n  - id: sales\n    record_audio: true\n", encoding="utf-8")
    await memory(agents_file=agents)
    url = nats_server.url
    await client.publish(CallStart(call_id="CArec", agent_id="sales"), subjects.CALLS_START)
    await claimed(url, "CArec")
    for frame in _frames("CArec", _tone(0.6, freq=300)):  # the caller speaks first ...
        await client.publish(frame, subjects.audio_in("CArec"))
        await asyncio.sleep(0.02)
    agent_audio = _tone(0.4, freq=600)
    await client.publish(AgentAudio(call_id="CArec", turn_id="t1", seq=0, payload=agent_audio, final=True),
                         subjects.audio_out("CArec"))  # ... then the agent answers
    await asyncio.sleep(0.6)
    await client.publish(CallEnd(call_id="CArec"), subjects.CALLS_END)
    record = await _until(lambda: _ended(url, "CArec"))
    assert record.recording is not None and record.recording.channels == 2

    out = tmp_path / "call.wav"
    code, _ = await _cli(capsys, "voicemail", "play", "CArec", "--recording", "--out", str(out), "--no-play",
                         "--nats", url)
    assert code == 0
    with wave.open(str(out)) as w:
        assert (w.getnchannels(), w.getframerate()) == (2, RATE)
        stereo = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    loud = lambda channel: np.flatnonzero(np.abs(stereo[:, channel]) > 2000)  # noqa: E731
    caller, agent = loud(0), loud(1)
    assert len(caller) > 0.5 * RATE * 0.8 and len(agent) > 0.4 * RATE * 0.8
    assert agent[0] >= caller[-1] - 0.15 * RATE  # the agent's answer comes after the caller, not over it


async def _ended(url: str, call_id: str):
    record = await get_call(url, call_id)
    return record if record is not None and record.ended_at else None
