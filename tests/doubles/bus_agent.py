"""A stand-in for stt + brain + tts on a real bus, for the edge failover tests and bench.

It greets on `calls.start`, answers each caller utterance (an energy gate on `audio.in`: speech,
then 200 ms of quiet) with a tone in marked chunks, and, as the brain is meant to on
`edge.takeover`, says again the chunks of its latest turn whose marks never came back (the
caller had not heard them when the old edge went). It counts what a call record would show:
one `calls.start` and one `calls.end` per call, however many edges served it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from faststream.nats import NatsBroker

from ringline.contracts import subjects
from ringline.contracts.audio import mulaw_decode, mulaw_encode, rms_dbfs
from ringline.contracts.events import EDGE_HANDOVER, EDGE_TAKEOVER
from ringline.contracts.messages import AgentAudio, AudioFrame, CallEnd, CallEvent, CallStart, Playback, make_mark


def tone(seconds: float, freq: float = 550.0, rate: int = 8000, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * freq * t) * level * 32767).astype(np.int16)


@dataclass
class BusAgent:
    broker: NatsBroker
    greeting_s: float = 1.0
    reply_s: float = 1.0
    chunk_s: float = 0.2
    think_s: float = 0.15
    starts: list[CallStart] = field(default_factory=list)
    ends: list[CallEnd] = field(default_factory=list)
    takeovers: list[CallEvent] = field(default_factory=list)
    handovers: list[CallEvent] = field(default_factory=list)
    replies: int = 0
    said_again: int = 0  # chunks said again after a takeover
    _heard: dict[str, int] = field(default_factory=dict)  # turn -> last chunk echoed
    _turns: dict[str, list[bytes]] = field(default_factory=dict)  # turn -> its chunks
    _latest: str = ""
    _speaking: bool = False
    _quiet: int = 0
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def attach(self) -> None:
        self.broker.subscriber(subjects.CALLS_START)(self.on_start)
        self.broker.subscriber(subjects.CALLS_END)(self.on_end)
        self.broker.subscriber("call.*.audio.in")(self.on_audio)
        self.broker.subscriber("call.*.playback")(self.on_playback)
        self.broker.subscriber(subjects.EVENT_WILDCARD)(self.on_event)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def on_start(self, call: CallStart) -> None:
        self.starts.append(call)
        self._spawn(self._say(call.call_id, "greeting", self.greeting_s, delay=0.1))

    async def on_end(self, end: CallEnd) -> None:
        self.ends.append(end)

    async def on_playback(self, playback: Playback) -> None:
        if not playback.cleared and playback.turn_id:
            seq = int(playback.mark.rpartition(":")[2] or 0)
            self._heard[playback.turn_id] = max(self._heard.get(playback.turn_id, 0), seq)

    async def on_event(self, event: CallEvent) -> None:
        if event.name == EDGE_HANDOVER:
            self.handovers.append(event)
        if event.name != EDGE_TAKEOVER:
            return
        self.takeovers.append(event)
        turn = self._latest
        chunks = self._turns.get(turn, [])
        unheard = chunks[self._heard.get(turn, 0):]
        if unheard:
            self.said_again += len(unheard)
            self._spawn(self._send(event.call_id, f"{turn}-again", unheard))

    async def on_audio(self, frame: AudioFrame) -> None:
        if rms_dbfs(mulaw_decode(frame.payload)) > -40:
            self._speaking, self._quiet = True, 0
            return
        if self._speaking:
            self._quiet += 1
            if self._quiet >= 10:
                self._speaking = False
                self.replies += 1
                self._spawn(self._say(frame.call_id, f"reply{self.replies}", self.reply_s, delay=self.think_s))

    async def _say(self, call_id: str, turn: str, seconds: float, delay: float) -> None:
        await asyncio.sleep(delay)
        audio = mulaw_encode(tone(seconds))
        step = int(self.chunk_s * 8000)
        chunks = [audio[i:i + step] for i in range(0, len(audio), step)]
        self._turns[turn], self._latest = chunks, turn
        await self._send(call_id, turn, chunks)

    async def _send(self, call_id: str, turn: str, chunks: list[bytes]) -> None:
        for seq, chunk in enumerate(chunks, start=1):
            await self.broker.publish(
                AgentAudio(call_id=call_id, turn_id=turn, seq=seq - 1, payload=chunk, mark=make_mark(turn, seq),
                           final=seq == len(chunks)), subjects.audio_out(call_id))

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
