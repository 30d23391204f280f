"""A call as one stage replica serves it: its bus view (`CallBus`) and its state (`CallSession`).

The replica that owns a call (see `router.CallRouter`) builds a `CallSession`, which subscribes
to the call's own subjects (dynamic subscriptions, so other replicas never see this call's
audio). A session that another replica may take over writes its state down (`snapshot`) and
can be built again from it (`restore`, before `start`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from faststream.nats import NatsBroker
from opentelemetry.context import Context

from ..messages import CallStart

log = logging.getLogger("ringline.calls")


class CallBus:
    """A call's view of the bus: its subscriptions and tasks, torn down together."""

    def __init__(self, broker: NatsBroker, call_id: str) -> None:
        self.broker = broker
        self.call_id = call_id
        self._subscribers: list[tuple[str, Any]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    async def subscribe(self, subject: str, handler: Callable[..., Awaitable[Any]]) -> None:
        subscriber = self.broker.subscriber(subject, persistent=False)
        subscriber(handler)
        await subscriber.start()
        self.track(subject, subscriber)

    def track(self, subject: str, subscriber: Any) -> None:
        """A subscription made without FastStream (anything with `async stop()`), stopped on close."""
        self._subscribers.append((subject, subscriber))

    def hand_over(self, subject: str, to: CallBus) -> bool:
        """Move this bus's subscription to `subject` onto `to`, where it outlives this bus's close.
        A fresh subscription would not do: the server drops what is published before it has the
        subscription, so a hand-over between two listeners would lose messages in the gap."""
        for index, (name, subscriber) in enumerate(self._subscribers):
            if name == subject:
                del self._subscribers[index]
                to.track(name, subscriber)
                return True
        return False

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
        for _, subscriber in self._subscribers:
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
        # Set by the router on a replica that takes the call over from another (before `restore`).
        self.taken_over = False

    @property
    def call_id(self) -> str:
        return self.call.call_id

    async def start(self) -> None:  # pragma: no cover - overridden
        return None

    async def close(self, reason: str) -> None:
        """The call is over: finish what the stage does at a call's end."""
        return None

    def snapshot(self) -> dict[str, Any] | None:
        """What another replica needs to carry this call on (plain data), or None for nothing."""
        return None

    def restore(self, state: dict[str, Any]) -> None:
        """Called before `start` on a replica that takes the call over, with the last snapshot."""
        return None

    async def detach(self) -> None:
        """The call goes on elsewhere (this replica drains or lost its lease): let go of what the
        session holds without ending the call. The router closes the bus afterwards."""
        return None
