"""A real edge (uvicorn on a free port) with a tiny scripted agent on the bus behind it.

The agent greets on `calls.start`, detects the end of each caller utterance with an energy
gate on `audio.in`, and answers with a tone carrying a mark and stage timings, as the real
stt/brain/tts chain would. The bus is FastStream's in-memory broker, or a real nats-server.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import uvicorn
from faststream.nats import NatsBroker, TestNatsBroker

from ringline.caller.speech import Utterance, from_pcm
from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode, mulaw_encode, rms_dbfs
from ringline.contracts.events import STAGE_READY
from ringline.contracts.messages import (
    AgentAudio,
    AudioFrame,
    CallEnd,
    CallEvent,
    CallStart,
    Control,
    Playback,
    TurnTiming,
    make_mark,
)
from ringline.contracts.runtime import create_broker
from ringline.services.telephony.app import create_app, running_broker
from ringline.services.telephony.hold import STAGES
from ringline.services.telephony.settings import TelephonySettings


def tone(seconds: float, freq: float = 440.0, rate: int = 8000, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


def tone_utterance(label: str, seconds: float = 0.6) -> Utterance:
    return from_pcm(np.concatenate([tone(seconds, 330.0), np.zeros(800, np.int16)]), 8000, label=label, text=label)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ScriptedAgent:
    """Claims each call for every stage (`stage.ready`, as the stages do, so the edge plays no hold
    line), greets, then answers every utterance once 200 ms of silence follow speech."""

    broker: NatsBroker
    greeting_s: float = 0.8
    reply_s: float = 0.6
    think_s: float = 0.15
    hang_up_after: int | None = None
    replies: int = 0
    starts: list[CallStart] = field(default_factory=list)
    ends: list[CallEnd] = field(default_factory=list)
    playbacks: list[Playback] = field(default_factory=list)
    frames: int = 0
    _speaking: bool = False
    _quiet: int = 0
    _speech_end: float = 0.0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def attach(self) -> None:
        self.broker.subscriber(subjects.CALLS_START)(self.on_start)
        self.broker.subscriber(subjects.CALLS_END)(self.on_end)
        self.broker.subscriber("call.*.audio.in")(self.on_audio)
        self.broker.subscriber("call.*.playback")(self.on_playback)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_start(self, call: CallStart) -> None:
        self.starts.append(call)
        for stage in STAGES:
            await self.broker.publish(CallEvent(call_id=call.call_id, name=STAGE_READY,
                                                data={"stage": stage, "replica": f"{stage}-a"}),
                                      subjects.event(call.call_id))
        self._spawn(self._say(call.call_id, "greeting", self.greeting_s, TurnTiming(), delay=0.1))

    async def on_end(self, end: CallEnd) -> None:
        self.ends.append(end)

    async def on_playback(self, playback: Playback) -> None:
        self.playbacks.append(playback)

    async def on_audio(self, frame: AudioFrame) -> None:
        self.frames += 1
        loud = rms_dbfs(mulaw_decode(frame.payload)) > -40
        if loud:
            self._speaking, self._quiet, self._speech_end = True, 0, frame.captured_at
            return
        if self._speaking:
            self._quiet += 1
            if self._quiet >= 10:
                self._speaking = False
                self.replies += 1
                ended = self._speech_end
                timing = TurnTiming(speech_ended_at=ended, transcript_at=ended + 0.05,
                                    first_chunk_at=ended + 0.25, first_audio_at=ended + 0.3)
                self._spawn(self._say(frame.call_id, f"reply{self.replies}", self.reply_s, timing,
                                      delay=self.think_s))

    async def _say(self, call_id: str, turn: str, seconds: float, timing: TurnTiming, delay: float) -> None:
        await asyncio.sleep(delay)
        audio = mulaw_encode(tone(seconds, 550.0))
        half = len(audio) // 2
        out = subjects.audio_out(call_id)
        await self.broker.publish(AgentAudio(call_id=call_id, turn_id=turn, seq=0, payload=audio[:half],
                                             timing=timing), out)
        await self.broker.publish(AgentAudio(call_id=call_id, turn_id=turn, seq=1, payload=audio[half:],
                                             mark=make_mark(turn, 1), final=True, timing=timing), out)
        if self.hang_up_after is not None and self.replies >= self.hang_up_after and turn != "greeting":
            await asyncio.sleep(seconds + 0.3)
            await self.broker.publish(Control(call_id=call_id, action="hangup", reason="done"),
                                      subjects.control(call_id))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def serve_edge(settings: TelephonySettings, broker: NatsBroker, run_broker: Any) -> AsyncIterator[str]:
    app = create_app(settings, broker=broker, run_broker=run_broker)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, ws_max_size=settings.max_message_bytes,
                            lifespan="on", log_level="warning", log_config=None)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError("the edge did not start")
        await asyncio.sleep(0.02)
    try:
        yield settings.base_url
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
def edge_settings(monkeypatch: pytest.MonkeyPatch) -> TelephonySettings:
    monkeypatch.delenv("TWILIO_AUTH_TOKEN", raising=False)
    return TelephonySettings(host="127.0.0.1", port=free_port(), drain_timeout_s=3.0)


@pytest.fixture
async def memory_edge(edge_settings: TelephonySettings) -> AsyncIterator[SimpleNamespace]:
    """The edge on the in-memory broker, with the scripted agent on the same broker."""
    broker = create_broker(edge_settings, "telephony")
    agent = ScriptedAgent(broker)
    agent.attach()
    async for url in serve_edge(edge_settings, broker, TestNatsBroker):
        yield SimpleNamespace(url=url, agent=agent, settings=edge_settings)
    await agent.close()



@pytest.fixture
def helpers() -> SimpleNamespace:
    return SimpleNamespace(tone_utterance=tone_utterance, tone=tone, ScriptedAgent=ScriptedAgent,
                           serve_edge=serve_edge, free_port=free_port, running_broker=running_broker)


@dataclass
class TurnTakingAgent:
    """A stand-in for stt + brain + tts that follows the turn-taking protocol with an energy gate.

    It greets, answers each caller utterance (once `end_silence_ms` of silence follow it) with a
    reply of `chunks` marked tone chunks, and, while its audio is still being heard, interrupts
    itself (`Control(interrupt)`) once the caller has spoken `barge_in_ms` over it: shorter
    sounds (backchannels) neither interrupt nor get an answer. Key 9 makes it say goodbye and
    hang up once the goodbye's mark is echoed (`hangup_early`: right away, cutting it off).
    """

    broker: NatsBroker
    barge_in_ms: float = 250.0
    end_silence_ms: float = 200.0
    min_utterance_ms: float = 300.0
    chunk_s: float = 1.0
    chunks: int = 3
    hangup_early: bool = False
    controls: list[Control] = field(default_factory=list)
    playbacks: list[Playback] = field(default_factory=list)
    ends: list[CallEnd] = field(default_factory=list)
    replies: int = 0
    _unheard: set[str] = field(default_factory=set)  # marks sent, not echoed yet
    _turn: str = ""
    _voiced: int = 0
    _quiet: int = 0
    _goodbye_mark: str = ""
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def attach(self) -> None:
        self.broker.subscriber(subjects.CALLS_START)(self.on_start)
        self.broker.subscriber(subjects.CALLS_END)(self.on_end)
        self.broker.subscriber("call.*.audio.in")(self.on_audio)
        self.broker.subscriber("call.*.playback")(self.on_playback)
        self.broker.subscriber("call.*.control")(self.on_control)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_start(self, call: CallStart) -> None:
        self._spawn(self._say(call.call_id, "greeting", 1, 0.1, TurnTiming()))

    async def on_end(self, end: CallEnd) -> None:
        self.ends.append(end)

    async def on_control(self, control: Control) -> None:
        self.controls.append(control)
        if control.action == "dtmf" and control.digit == "9":
            self._goodbye_mark = make_mark("goodbye", 0)
            self._spawn(self._say(control.call_id, "goodbye", 1, 0.1, TurnTiming()))
            if self.hangup_early:
                self._spawn(self._hang_up(control.call_id, delay=0.3))

    async def on_playback(self, playback: Playback) -> None:
        self.playbacks.append(playback)
        self._unheard.discard(playback.mark)
        if playback.mark == self._goodbye_mark and not playback.cleared and not self.hangup_early:
            await self._hang_up(playback.call_id, delay=0.0)

    async def on_audio(self, frame: AudioFrame) -> None:
        frame_ms = 20.0
        if rms_dbfs(mulaw_decode(frame.payload)) > -40:
            self._voiced += 1
            self._quiet = 0
            speaking = any(m.startswith(self._turn + ":") for m in self._unheard) if self._turn else False
            if speaking and self._voiced * frame_ms >= self.barge_in_ms:
                interrupted, self._turn = self._turn, ""
                self._unheard = {m for m in self._unheard if not m.startswith(interrupted + ":")}
                await self.broker.publish(Control(call_id=frame.call_id, action="interrupt", turn_id=interrupted),
                                          subjects.control(frame.call_id))
            return
        if not self._voiced:
            return
        self._quiet += 1
        if self._quiet * frame_ms >= self.end_silence_ms:
            voiced_ms, self._voiced = self._voiced * frame_ms, 0
            if voiced_ms >= self.min_utterance_ms:  # a backchannel is no turn
                self.replies += 1
                end = frame.captured_at - self.end_silence_ms / 1000
                timing = TurnTiming(speech_ended_at=end, transcript_at=end + 0.05, first_chunk_at=end + 0.1,
                                    first_audio_at=end + 0.15)
                self._spawn(self._say(frame.call_id, f"reply{self.replies}", self.chunks, 0.1, timing))

    async def _say(self, call_id: str, turn: str, chunks: int, delay: float, timing: TurnTiming) -> None:
        await asyncio.sleep(delay)
        self._turn = turn
        for seq in range(chunks):
            mark = make_mark(turn, seq)
            self._unheard.add(mark)
            await self.broker.publish(AgentAudio(call_id=call_id, turn_id=turn, seq=seq,
                                                 payload=mulaw_encode(tone(self.chunk_s, 550.0 + 50 * seq)),
                                                 mark=mark, final=seq == chunks - 1, timing=timing),
                                      subjects.audio_out(call_id))

    async def _hang_up(self, call_id: str, delay: float) -> None:
        await asyncio.sleep(delay)
        await self.broker.publish(Control(call_id=call_id, action="hangup", reason="goodbye"),
                                  subjects.control(call_id))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def talking_edge(edge_settings: TelephonySettings) -> AsyncIterator[SimpleNamespace]:
    """The edge on the in-memory broker with the turn-taking agent behind it."""
    broker = create_broker(edge_settings, "telephony")
    agent = TurnTakingAgent(broker)
    agent.attach()
    async for url in serve_edge(edge_settings, broker, TestNatsBroker):
        yield SimpleNamespace(url=url, agent=agent)
    await agent.close()
