"""The caller's silence after the agent spoke: re-prompt once, then say goodbye.

`arm` starts the wait (the first one lasts `first_s`, later ones `again_s`); anything the caller
does `disarm`s it, and a real caller turn `reset`s the count. When a wait runs out,
`on_silence(n)` runs with `n` the number of silences already acted on (0: re-prompt, 1: end);
it returns False when it did nothing (the agent turned out to be busy), which is not counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

Spawn = Callable[[Coroutine[Any, Any, Any], str], asyncio.Task[Any]]
OnSilence = Callable[[int], Awaitable[bool]]


class SilenceWatch:
    def __init__(self, spawn: Spawn, on_silence: OnSilence, first_s: float, again_s: float) -> None:
        self._spawn = spawn
        self._on_silence = on_silence
        self.first_s = first_s
        self.again_s = again_s
        self.count = 0
        self._waiting: asyncio.Task[Any] | None = None

    @property
    def enabled(self) -> bool:
        return self.first_s > 0

    @property
    def armed(self) -> bool:
        return self._waiting is not None and not self._waiting.done()

    def arm(self) -> None:
        if not self.enabled:
            return
        self.disarm()
        delay = self.first_s if self.count == 0 else self.again_s
        self._waiting = self._spawn(self._wait(delay), "silence")

    def disarm(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is not None and not waiting.done():
            waiting.cancel()

    def reset(self) -> None:
        self.count = 0
        self.disarm()

    async def _wait(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._waiting = None  # from here on a disarm must not cancel what the handler says
        if await self._on_silence(self.count):
            self.count += 1
