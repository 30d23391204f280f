"""Fakes and harness for the brain's tests. Fakes implement the real `ChatModel` interface."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from faststream.nats import NatsMessage, TestNatsBroker

from ringline.contracts import subjects
from ringline.contracts.events import TURN_FIRST_AUDIO
from ringline.contracts.messages import (
    CallEnd,
    CallEvent,
    CallStart,
    Control,
    Playback,
    ReplyChunk,
    SpeechEvent,
    Transcript,
    TurnTiming,
    make_mark,
)
from ringline.contracts.runtime import STAGE_READY
from ringline.services.brain.app import create_app
from ringline.services.brain.llm.base import ChatModel, Messages, StreamStats
from ringline.services.brain.settings import BrainSettings


class ScriptedModel(ChatModel):
    """Streams scripted pieces, `delay` seconds apart; then optionally fails."""

    provider = "fake"
    model = "scripted"

    def __init__(self, pieces: list[str], delay: float = 0.0, fail_with: Exception | None = None,
                 first_delay: float | None = None) -> None:
        self.pieces = pieces
        self.delay = delay
        self.first_delay = first_delay
        self.fail_with = fail_with
        self.calls: list[Messages] = []
        self.finished = 0  # streams that ran to the end
        self.stopped = 0  # streams closed early (cancelled or abandoned)

    async def _stream_impl(self, messages: Messages, max_tokens: int, stats: StreamStats) -> AsyncIterator[str]:
        self.calls.append(messages)
        done = False
        try:
            for i, piece in enumerate(self.pieces):
                delay = self.first_delay if (i == 0 and self.first_delay is not None) else self.delay
                await asyncio.sleep(delay)
                yield piece
            if self.fail_with is not None:
                raise self.fail_with
            done = True
        finally:
            if done:
                self.finished += 1
            else:
                self.stopped += 1


@dataclass
class Harness:
    broker: Any
    model: Any
    settings: BrainSettings
    replies: list[ReplyChunk] = field(default_factory=list)
    reply_headers: list[dict[str, str]] = field(default_factory=list)
    events: list[CallEvent] = field(default_factory=list)
    controls: list[Control] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    play_s: float | None = 0.01  # echo each chunk's mark this long after it (None: the test echoes)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    async def start_call(self, call_id: str = "call-1", tts_ready: bool = True, **fields: Any) -> str:
        self.calls.append(call_id)
        await self.broker.publish(CallStart(call_id=call_id, **fields), subjects.CALLS_START)
        if tts_ready:
            await self.tts_ready(call_id)
        return call_id

    async def tts_ready(self, call_id: str) -> None:
        for stage in ("memory", "tts"):
            ready = CallEvent(call_id=call_id, name=STAGE_READY, data={"stage": stage})
            await self.broker.publish(ready, subjects.event(call_id))

    async def say(self, call_id: str, text: str, utterance_id: str = "u1", headers: dict[str, str] | None = None,
                  **fields: Any) -> Transcript:
        ended = time.time()
        transcript = Transcript(call_id=call_id, utterance_id=utterance_id, text=text,
                                speech_ended_at=fields.pop("speech_ended_at", ended - 0.2), **fields)
        await self.broker.publish(transcript, subjects.transcript(call_id), headers=headers)
        return transcript

    async def control(self, call_id: str, action: str, turn_id: str = "") -> None:
        await self.broker.publish(Control(call_id=call_id, action=action, turn_id=turn_id), subjects.control(call_id))

    async def speech(self, call_id: str, kind: str, voiced_ms: float = 0.0, utterance_id: str = "u1",
                     started_at: float = 0.0) -> None:
        event = SpeechEvent(call_id=call_id, utterance_id=utterance_id, kind=kind, voiced_ms=voiced_ms,
                            started_at=started_at)
        await self.broker.publish(event, subjects.speech(call_id))

    async def heard(self, chunk: ReplyChunk, cleared: bool = False, replay: int = 0) -> None:
        """The phone side echoes the chunk's mark: the caller heard it (or it was cleared)."""
        playback = Playback(call_id=chunk.call_id, mark=make_mark(chunk.turn_id, chunk.seq, replay),
                            turn_id=chunk.turn_id, cleared=cleared)
        await self.broker.publish(playback, subjects.playback(chunk.call_id))

    async def playing_since(self, chunk: ReplyChunk, seconds: float) -> None:
        """The edge wrote the turn's first audio to the phone `seconds` ago."""
        timing = TurnTiming(edge_sent_at=time.time() - seconds)
        event = CallEvent(call_id=chunk.call_id, name=TURN_FIRST_AUDIO, turn_id=chunk.turn_id, timing=timing)
        await self.broker.publish(event, subjects.event(chunk.call_id))

    async def event(self, call_id: str, name: str, **data: Any) -> None:
        await self.broker.publish(CallEvent(call_id=call_id, name=name, data=data), subjects.event(call_id))

    async def dtmf(self, call_id: str, digit: str) -> None:
        await self.broker.publish(Control(call_id=call_id, action="dtmf", digit=digit), subjects.control(call_id))

    async def greeted(self, timeout: float = 3.0) -> ReplyChunk:
        """Wait for the greeting and (when marks are echoed for the test) until it has been heard."""
        await wait_until(lambda: any(r.kind == "greeting" for r in self.replies)
                         and (self.play_s is None or not self.tasks), timeout)
        return next(r for r in self.replies if r.kind == "greeting")

    async def played(self, timeout: float = 3.0) -> None:
        """Wait until every chunk published so far has been heard (its mark echoed)."""
        await wait_until(lambda: not self.tasks, timeout)

    def _play(self, chunk: ReplyChunk) -> None:
        if self.play_s is None:
            return

        async def later() -> None:
            await asyncio.sleep(self.play_s)
            await self.heard(chunk)

        task = asyncio.create_task(later())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def turn(self, turn_id: str) -> list[ReplyChunk]:
        return [r for r in self.replies if r.turn_id == turn_id]

    def said(self, kind: str | None = None) -> str:
        return " ".join(r.text for r in self.answers(kind) if r.text)

    def named(self, name: str) -> list[CallEvent]:
        return [e for e in self.events if e.name == name]

    def answers(self, kind: str | None = None) -> list[ReplyChunk]:
        return [r for r in self.replies if r.kind != "greeting" and (kind is None or r.kind == kind)]

    def llm_events(self) -> list[CallEvent]:
        return [e for e in self.events if e.name == "turn.llm"]


async def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.fixture
def make_harness():
    """`async with make_harness(model, **settings) as h:` runs the brain app on TestNatsBroker.

    The model is used as given (load it first if it needs loading); the caller owns it.
    """
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def _make(model: ChatModel, play_s: float | None = 0.01, **overrides: Any):
        values = {"tts_ready_timeout_s": 1.0, "llm_first_token_timeout_s": 2.0, "llm_stall_timeout_s": 2.0}
        values.update(overrides)
        settings = BrainSettings(**values)
        app = create_app(settings, model=model)
        broker = app.broker
        harness = Harness(broker=broker, model=model, settings=settings, play_s=play_s)

        @broker.subscriber(subjects.REPLY_PATTERN)
        async def on_reply(chunk: ReplyChunk, msg: NatsMessage) -> None:
            harness.replies.append(chunk)
            harness.reply_headers.append(dict(msg.headers or {}))
            harness._play(chunk)

        @broker.subscriber(subjects.EVENT_PATTERN)
        async def on_event(event: CallEvent) -> None:
            harness.events.append(event)

        @broker.subscriber(subjects.CONTROL_PATTERN)
        async def on_control(control: Control) -> None:
            harness.controls.append(control)

        async with TestNatsBroker(broker) as test_broker:
            harness.broker = test_broker
            try:
                yield harness
            finally:
                for task in list(harness.tasks):
                    task.cancel()
                for call_id in harness.calls:  # the router closes each session and its tasks
                    await test_broker.publish(CallEnd(call_id=call_id), subjects.CALLS_END)

    return _make


@pytest.fixture
def scripted():
    return ScriptedModel


@pytest.fixture
def until():
    """`await until(lambda: cond, timeout)` polls until the condition holds."""
    return wait_until


# -- real providers, shared by their own tests and the provider contract suite ------------------

@pytest.fixture(scope="session")
def local_model():
    """The real llama.cpp model, loaded once per test session."""
    pytest.importorskip("llama_cpp")
    from ringline.services.brain.llm.base import build_chat_model

    model = build_chat_model(BrainSettings(provider="local"))
    run_in_fresh_loop(model.load())
    yield model
    run_in_fresh_loop(model.aclose())


def run_in_fresh_loop(coro: Any) -> Any:
    """Run `coro` on its own loop in a helper thread (works even while a test loop is running)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def sse_events(pieces: list[str]) -> list[tuple[str, dict[str, Any]]]:
    usage = {"input_tokens": 42, "output_tokens": 1, "cache_read_input_tokens": 30}
    message = {"id": "msg_test", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    events = [("message_start", {"type": "message_start", "message": message}),
              ("content_block_start", {"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}})]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": p}}) for p in pieces]
    events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 9},
                                  "delta": {"stop_reason": "end_turn", "stop_sequence": None}}),
               ("message_stop", {"type": "message_stop"})]
    return events


def sse_tool_use(text: str, tool_id: str, name: str, input_parts: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """A reply that says `text` and then calls a tool, its JSON input streamed in `input_parts`."""
    usage = {"input_tokens": 50, "output_tokens": 1}
    message = {"id": "msg_tool", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}
    events: list[tuple[str, dict[str, Any]]] = [("message_start", {"type": "message_start", "message": message})]
    index = 0
    if text:
        events += [("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}}),
                   ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": text}}),
                   ("content_block_stop", {"type": "content_block_stop", "index": 0})]
        index = 1
    events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
        "type": "tool_use", "id": tool_id, "name": name, "input": {}}}))
    events += [("content_block_delta", {"type": "content_block_delta", "index": index,
                                        "delta": {"type": "input_json_delta", "partial_json": part}})
               for part in input_parts]
    events += [("content_block_stop", {"type": "content_block_stop", "index": index}),
               ("message_delta", {"type": "message_delta", "usage": {"output_tokens": 20},
                                  "delta": {"stop_reason": "tool_use", "stop_sequence": None}}),
               ("message_stop", {"type": "message_stop"})]
    return events


@pytest.fixture
def tool_use_sse():
    return sse_tool_use


@pytest.fixture
async def fake_anthropic():
    """Yields (base_url, requests, state); POST /v1/messages streams the scripted reply.

    `state["replies"]`, when set, is a list of SSE event lists answered one per request (then
    `state["pieces"]` as text again). Non-streaming requests (the warm-up) go to `state["warmups"]`.
    """
    requests: list[dict[str, Any]] = []
    state: dict[str, Any] = {"status": 200, "pieces": ["The capital", " of France is", " Paris."], "replies": [],
                             "warmups": []}

    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        recorded = {"body": body, "headers": {k.lower(): v for k, v in request.headers.items()}}
        if not body.get("stream"):  # the prompt-cache warm-up at call start (max_tokens=1)
            state["warmups"].append(recorded)
            usage = {"input_tokens": 5, "output_tokens": 1, "cache_creation_input_tokens": 300}
            return web.json_response({"id": "msg_warm", "type": "message", "role": "assistant",
                                      "model": body["model"], "content": [{"type": "text", "text": "H"}],
                                      "stop_reason": "max_tokens", "stop_sequence": None, "usage": usage})
        requests.append(recorded)
        if state["status"] != 200:
            error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            return web.json_response(error, status=state["status"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        events = state["replies"].pop(0) if state["replies"] else sse_events(state["pieces"])
        for name, data in events:
            await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_post("/v1/messages", messages)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}", requests, state
    await runner.cleanup()


