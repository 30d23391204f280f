"""The session's clocks: named one-shot timers whose firing is an event like any other.

`arm(name, delay)` (re)starts the timer `name`; `disarm(name)` stops it. When it runs out, the
session's `dispatch` gets `TimerFired(name)`, and the decisions say what it means. A timer that
already fired is no longer armed, so disarming it from what its firing decided stops nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from .events import TimerFired

Spawn = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]
Dispatch = Callable[[object], Awaitable[None]]


class Timers:
    def __init__(self, spawn: Spawn, dispatch: Dispatch) -> None:
        self._spawn = spawn
        self._dispatch = dispatch
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self.closed = False

    def armed(self, name: str) -> bool:
        return name in self._tasks

    def arm(self, name: str, delay: float) -> None:
        if self.closed:
            return
        self.disarm(name)
        self._tasks[name] = self._spawn(self._run(name, delay), name)

    def disarm(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def close(self) -> None:
        self.closed = True
        for name in list(self._tasks):
            self.disarm(name)

    async def _run(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._tasks.get(name) is asyncio.current_task():
            del self._tasks[name]  # from here on a disarm must not stop what the firing decides
        await self._dispatch(TimerFired(name))
