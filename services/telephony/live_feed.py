"""Live call events for browsers: the dashboard's call list and one call's transcript as it happens.

Every edge replica hears `calls.start`/`calls.end` (no queue group: they are few), so its board
lists the calls of every replica. The chatty per-call subjects (speech, transcripts, replies,
events, control; never audio) are subscribed to only while some browser watches, and dropped
when the last one leaves. A watcher is a bounded queue of JSON-able dicts: one that falls behind
is dropped from the feed (its stream ends and the browser reconnects) instead of holding memory.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from faststream.nats import NatsBroker

from ringline.contracts import subjects
from ringline.contracts.messages import CallEnd, CallEvent, CallStart, Control, ReplyChunk, SpeechEvent, Transcript

from .live_board import LiveBoard

log = logging.getLogger("ringline.telephony.live")

QUEUE_SIZE = 500
Update = dict[str, Any]


@dataclass(eq=False)
class Watcher:
    call_id: str | None  # None: the list of calls
    queue: asyncio.Queue[Update | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def put(self, update: Update) -> bool:
        try:
            self.queue.put_nowait(update)
            return True
        except asyncio.QueueFull:
            return False


def transcript_update(t: Transcript) -> Update:
    return {"type": "transcript", "call_id": t.call_id, "utterance_id": t.utterance_id, "text": t.text,
            "final": t.is_final, "end_of_turn": t.end_of_turn, "at": t.emitted_at,
            "speech_ended_at": t.speech_ended_at}


def reply_update(chunk: ReplyChunk) -> Update:
    return {"type": "reply", "call_id": chunk.call_id, "turn_id": chunk.turn_id, "seq": chunk.seq,
            "text": chunk.text, "final": chunk.final, "kind": chunk.kind}


def event_update(event: CallEvent) -> Update:
    data = {k: v for k, v in event.data.items() if isinstance(v, str | int | float | bool | list | dict | None)}
    return {"type": "event", "call_id": event.call_id, "name": event.name, "turn_id": event.turn_id,
            "at": event.at, "stages": event.timing.stages_ms() if event.timing else {}, "data": data}


class LiveFeed:
    def __init__(self, broker: NatsBroker, board: LiveBoard | None = None) -> None:
        self.broker = broker
        self.board = board or LiveBoard()
        self._watchers: set[Watcher] = set()
        self._subscribers: list[Any] = []
        self._lock = asyncio.Lock()
        broker.subscriber(subjects.CALLS_START)(self._on_start)
        broker.subscriber(subjects.CALLS_END)(self._on_end)

    @property
    def watching(self) -> bool:
        return bool(self._subscribers)

    @asynccontextmanager
    async def watch(self, call_id: str | None = None) -> AsyncIterator[Watcher]:
        watcher = Watcher(call_id)
        async with self._lock:
            if not self._subscribers:
                await self._subscribe()  # the bus away: raises, nothing is left half-watched
            self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            async with self._lock:
                self._watchers.discard(watcher)
                if not self._watchers:
                    await self._unsubscribe()

    # --------------------------------------------------------------------------- subscriptions

    async def _subscribe(self) -> None:
        handlers: list[tuple[str, Callable[..., Awaitable[None]]]] = [
            (subjects.SPEECH_WILDCARD, self._on_speech), (subjects.TRANSCRIPT_WILDCARD, self._on_transcript),
            (subjects.REPLY_WILDCARD, self._on_reply), (subjects.EVENT_WILDCARD, self._on_event),
            (subjects.CONTROL_WILDCARD, self._on_control),
        ]
        try:
            for subject, handler in handlers:
                subscriber = self.broker.subscriber(subject, persistent=False)
                subscriber(handler)
                await subscriber.start()
                self._subscribers.append(subscriber)
        except Exception:
            await self._unsubscribe()
            raise
        log.info("live feed: watching every call's events (%d viewers)", len(self._watchers))

    async def _unsubscribe(self) -> None:
        for subscriber in self._subscribers:
            try:
                await subscriber.stop()
            except Exception:  # gone with the connection
                log.debug("stopping a live-feed subscriber failed", exc_info=True)
        self._subscribers.clear()
        log.info("live feed: no viewers left; per-call events no longer watched")

    # ------------------------------------------------------------------------------- fan-out

    def _send(self, call_id: str, update: Update, call_view: Update | None = None) -> None:
        """`update` to the call's watchers; the call's new view (if it changed) to every list watcher too."""
        for watcher in list(self._watchers):
            sent = True
            if watcher.call_id == call_id:
                sent = (call_view is None or watcher.put({"type": "call", "call": call_view})) and \
                    (not update or watcher.put(update))
            elif watcher.call_id is None and call_view is not None:
                sent = watcher.put({"type": "call", "call": call_view})
            if not sent:  # fell behind: end its stream, the browser reconnects and starts afresh
                self._watchers.discard(watcher)
                watcher.queue.get_nowait()
                watcher.queue.put_nowait(None)

    async def _on_start(self, start: CallStart) -> None:
        self._send(start.call_id, {}, self.board.on_start(start))

    async def _on_end(self, end: CallEnd) -> None:
        self._send(end.call_id, {}, self.board.on_end(end))

    async def _on_speech(self, speech: SpeechEvent) -> None:
        view = self.board.on_speech(speech)
        update = {"type": "speech", "call_id": speech.call_id, "kind": speech.kind, "at": speech.at} \
            if speech.kind != "continuing" else {}
        if update or view:
            self._send(speech.call_id, update, view)

    async def _on_transcript(self, transcript: Transcript) -> None:
        self._send(transcript.call_id, transcript_update(transcript), self.board.on_transcript(transcript))

    async def _on_reply(self, chunk: ReplyChunk) -> None:
        self._send(chunk.call_id, reply_update(chunk))

    async def _on_event(self, event: CallEvent) -> None:
        self._send(event.call_id, event_update(event), self.board.on_event(event))

    async def _on_control(self, control: Control) -> None:
        update = {"type": "control", "call_id": control.call_id, "action": control.action,
                  "turn_id": control.turn_id, "reason": control.reason, "at": control.at}
        self._send(control.call_id, update, self.board.on_control(control))
