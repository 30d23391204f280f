"""Call affinity: one replica of each stage claims a call and owns its per-call state.

`calls.start` is consumed through a queue group named after the stage, so exactly one replica
receives it. That replica builds a `CallSession` which subscribes to the call's own subjects
(dynamic subscriptions, so other replicas never see this call's audio). `calls.end` reaches
every replica; the owner closes the session and drops its subscriptions.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from faststream.nats import NatsBroker, NatsMessage
from opentelemetry.context import Context

from .. import subjects
from ..events import STAGE_QUERY, STAGE_READY
from ..messages import CallEnd, CallEvent, CallStart
from .telemetry import extract_context

log = logging.getLogger("ringline.calls")


class CallBus:
    """A call's view of the bus: its subscriptions and tasks, torn down together."""

    def __init__(self, broker: NatsBroker, call_id: str) -> None:
        self.broker = broker
        self.call_id = call_id
        self._subscribers: list[Any] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    async def subscribe(self, subject: str, handler: Callable[..., Awaitable[Any]]) -> None:
        subscriber = self.broker.subscriber(subject, persistent=False)
        subscriber(handler)
        await subscriber.start()
        self._subscribers.append(subscriber)

    async def publish(self, message: Any, subject: str, headers: dict[str, str] | None = None) -> None:
        if self.closed:
            return
        await self.broker.publish(message, subject, headers=headers)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"{self.call_id}:{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("call %s task %s failed", self.call_id, task.get_name(), exc_info=task.exception())

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for subscriber in self._subscribers:
            try:
                await subscriber.stop()
            except Exception:  # a subscription already gone with the connection
                log.debug("stopping a subscriber of call %s failed", self.call_id, exc_info=True)
        self._subscribers.clear()


class CallSession:
    """Per-call state of one stage. Subclasses subscribe in `start` and clean up in `close`."""

    def __init__(self, call: CallStart, bus: CallBus) -> None:
        self.call = call
        self.bus = bus
        # The call's trace (from the `calls.start` headers): per-turn spans hang off it.
        self.trace_context: Context | None = None

    @property
    def call_id(self) -> str:
        return self.call.call_id

    async def start(self) -> None:  # pragma: no cover - overridden
        return None

    async def close(self, reason: str) -> None:
        return None


SessionFactory = Callable[[CallStart, CallBus], CallSession | Awaitable[CallSession]]


class CallRouter:
    """Claims calls for one stage and keeps a session per owned call."""

    def __init__(self, broker: NatsBroker, stage: str, factory: SessionFactory) -> None:
        self.broker = broker
        self.stage = stage
        self.factory = factory
        self.sessions: dict[str, CallSession] = {}
        broker.subscriber(subjects.CALLS_START, queue=stage)(self._on_start)
        broker.subscriber(subjects.CALLS_END)(self._on_end)

    async def _on_start(self, call: CallStart, msg: NatsMessage) -> None:
        if call.call_id in self.sessions:
            log.info("%s already owns call %s; duplicate start ignored", self.stage, call.call_id)
            return
        bus = CallBus(self.broker, call.call_id)
        made = self.factory(call, bus)
        session = await made if inspect.isawaitable(made) else made
        if call.call_id in self.sessions:  # a duplicate start arrived while the factory awaited
            await bus.close()
            return
        session.trace_context = extract_context(msg.headers)
        self.sessions[call.call_id] = session
        try:
            await session.start()
        except Exception:
            log.exception("%s could not start call %s", self.stage, call.call_id)
            await self.end(call.call_id, "stage failed to start")
            return
        log.info("%s claimed call %s (%d active)", self.stage, call.call_id, len(self.sessions))
        # Tell the other stages this one is listening (the brain waits for TTS before greeting),
        # and tell again whenever asked: a stage that subscribed later may have missed it.
        ready = CallEvent(call_id=call.call_id, name=STAGE_READY, data={"stage": self.stage})

        async def answer_query(event: CallEvent) -> None:
            if event.name == STAGE_QUERY:
                await bus.publish(ready, subjects.event(call.call_id))

        await bus.subscribe(subjects.event(call.call_id), answer_query)
        await bus.publish(ready, subjects.event(call.call_id))

    async def _on_end(self, end: CallEnd) -> None:
        await self.end(end.call_id, end.reason)

    async def end(self, call_id: str, reason: str) -> None:
        session = self.sessions.pop(call_id, None)
        if session is None:
            return
        try:
            await session.close(reason)
        except Exception:
            log.exception("%s: closing call %s failed", self.stage, call_id)
        finally:
            await session.bus.close()
        log.info("%s released call %s: %s", self.stage, call_id, reason)

    async def drain(self) -> None:
        """Graceful shutdown: close every owned call's session."""
        await asyncio.gather(*(self.end(cid, "service shutting down") for cid in list(self.sessions)))
